"""`GET /healthz` of a real `publish serve`: 503 with the reason while this node's
outputs are missing or built from an older content version than the store's, 200
once the node has built them (it builds at start and whenever the store moves on).
The node's build is held back by holding its build lock, as another builder would."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

from publisher.output import BUILD_LOCK
from tests.sites import correct_the_seed, publish
from tests.waiting import wait_until
from tests.webserver import Server, free_port, make_site

CORRECTED = "/articles/openai-to-open-office-in-seoul.html"


def health(server: Server) -> tuple[int, dict[str, object]]:
    r = server.client.get("/healthz")
    assert r.headers["cache-control"] == "no-store" and "\n" not in r.text.strip()
    return r.status_code, r.json()


@pytest.mark.slow
def test_healthz_says_503_while_the_node_is_behind_the_store(tmp_path: Path) -> None:
    port = free_port()
    site = make_site(tmp_path / "site", port)
    publish(site, "collect")
    server = Server(site, port)
    try:
        wait_until(lambda: health(server)[0] == 200, 20, "the node built its outputs")  # once started
        assert health(server) == (200, {"status": "ok", "output": True})
        assert "11 global cities" in server.client.get(CORRECTED).text

        lock = os.open(site / "public" / BUILD_LOCK, os.O_RDWR)
        fcntl.flock(lock, fcntl.LOCK_EX)  # another build under way: the node must wait
        try:
            correct_the_seed(site)
            publish(site, "collect")  # the store moves on; the node's pages are behind it
            code, body = health(server)
            assert code == 503 and "was built from content version" in str(body["output"]), body
            assert "11 global cities" in server.client.get(CORRECTED).text  # still served meanwhile
        finally:
            os.close(lock)
        wait_until(lambda: health(server)[0] == 200, 20, "the node built the correction")
        assert "12 global cities" in server.client.get(CORRECTED).text

        publish(site, "collect")  # nothing changed: the version stays, so does the health
        assert health(server)[0] == 200
        publish(site, "feeds")  # the CLI's build of the same folder counts as the node's
        assert health(server)[0] == 200
    finally:
        server.stop()


def test_a_node_rebuilds_an_output_folder_without_its_index_at_start(tmp_path: Path) -> None:
    port = free_port()
    site = make_site(tmp_path / "site", port)
    publish(site, "now", "--no-email")
    (site / "public" / "index.html").unlink()
    server = Server(site, port)
    try:
        wait_until(lambda: health(server)[0] == 200, 20, "the node rebuilt its outputs")
        assert server.client.get("/").status_code == 200
    finally:
        server.stop()
