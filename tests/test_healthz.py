"""`GET /healthz` of a real `publish serve`: 503 with the reason while this node has no
outputs or outputs older than the store's articles, 200 once they are built."""

from __future__ import annotations

from pathlib import Path

from tests.sites import correct_the_seed, publish
from tests.webserver import Server, free_port, make_site


def health(server: Server) -> tuple[int, dict[str, object]]:
    r = server.client.get("/healthz")
    assert r.headers["cache-control"] == "no-store" and "\n" not in r.text.strip()
    return r.status_code, r.json()


def test_healthz_says_503_until_the_outputs_are_current(tmp_path: Path) -> None:
    port = free_port()
    site = make_site(tmp_path / "site", port)
    server = Server(site, port)
    try:
        code, body = health(server)
        assert code == 503 and body["status"] == "error", body
        assert "no web edition in" in str(body["output"]), body

        publish(site, "collect")  # the store has articles, the node no pages yet
        assert health(server)[0] == 503

        publish(site, "feeds")
        assert health(server) == (200, {"status": "ok", "output": True})

        correct_the_seed(site)
        publish(site, "collect")  # a corrected article: the pages are now behind the store
        code, body = health(server)
        assert code == 503 and "before the articles changed at" in str(body["output"]), body

        publish(site, "collect")  # nothing changed: still behind, still 503
        assert health(server)[0] == 503
        publish(site, "feeds")
        assert health(server)[0] == 200
        publish(site, "feeds")  # a build that changes no file still counts as current
        assert health(server)[0] == 200
    finally:
        server.stop()


def test_an_output_folder_without_its_index_is_not_healthy(tmp_path: Path) -> None:
    port = free_port()
    site = make_site(tmp_path / "site", port)
    publish(site, "now", "--no-email")
    (site / "public" / "index.html").unlink()
    server = Server(site, port)
    try:
        code, body = health(server)
        assert code == 503 and "no web edition in" in str(body["output"]), body
    finally:
        server.stop()
