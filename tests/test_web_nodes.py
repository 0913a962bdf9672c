"""Every web node serves current outputs: two real ``publish serve`` processes, each
with its own output folder, on one shared store (a SQLite file, then PostgreSQL),
while an editor's machine collects and publishes elsewhere. A node's output folder is
a cache of the store: built at start, rebuilt once the store's content version moves,
and ``/healthz`` is 503 whenever the node is behind (judged by versions, not clocks).
An embargoed article comes out on every node when its time comes (the database's)."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from publisher.models import Article, Saving
from publisher.store import Store
from tests.pg import use_store
from tests.sites import correct_the_seed, edit_config, publish
from tests.waiting import wait_until
from tests.webserver import Server, free_port, make_site

NEW_STORY = "seeds/009_web_nodes.txt"
NEW_PAGE = "/articles/night-markets-return-to-seoul-riverside-parks.html"
EMBARGOED = "/articles/city-budget-passes-at-noon.html"


def new_story(editor: Path) -> None:
    (editor / NEW_STORY).write_text(
        "Night markets return to Seoul riverside parks\n"
        "Published: 28 May. 2025, 09:00\n"
        "The city's night markets reopen on Friday at four riverside parks along the Han.\n",
        encoding="utf-8",
    )


def embargoed_story(url: str, seconds: float) -> None:
    """An article stored now whose publication time is ``seconds`` away."""
    when = datetime.now(UTC) + timedelta(seconds=seconds)
    story = Article(
        "wire:budget", "wire", "City budget passes at noon", "<p>The council voted.</p>", when, when
    )
    store = Store.open(url)
    try:
        store.articles.save_many([Saving(story)], datetime.now(UTC))
    finally:
        store.close()


def url_of(site: Path) -> str:
    return tomllib.loads((site / "config.toml").read_text(encoding="utf-8"))["store"]["url"]


@pytest.fixture(params=["sqlite", "postgresql"])
def nodes(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    """(editor site, [node A, node B]): three folders on one store; the editor has the
    sources and never serves, each node serves its own never-built output folder."""
    editor = make_site(tmp_path / "editor", free_port())
    url = (
        request.getfixturevalue("pg_url")
        if request.param == "postgresql"
        else f"sqlite:///{editor / 'publisher.db'}"
    )
    use_store(editor, url)
    publish(editor, "collect")  # the store exists (and is migrated) before the nodes start
    servers: list[Server] = []
    try:
        for name in ("a", "b"):
            port = free_port()
            site = make_site(tmp_path / name, port)
            use_store(site, url)
            assert not (site / "public").exists()
            servers.append(Server(site, port))
        yield editor, servers
    finally:
        for server in servers:
            server.stop()


def status(server: Server, path: str) -> int:
    return server.client.get(path).status_code


def current(server: Server, path: str, text: str | None = None) -> bool:
    """``path`` is served (holding ``text``); and whenever it is not, /healthz said 503
    just before: a node never calls itself healthy while it lags the store."""
    healthy = server.client.get("/healthz").status_code
    r = server.client.get(path)
    served = r.status_code == 200 and (text is None or text in r.text)
    assert served or healthy == 503, f"{server.site.name}: /healthz {healthy} while {path} is not current"
    return served


@pytest.mark.slow
def test_every_node_serves_what_the_editor_publishes(nodes) -> None:  # type: ignore[no-untyped-def]
    editor, servers = nodes
    for server in servers:  # built once started: pages, not 404
        healthy = lambda s=server: s.client.get("/healthz").status_code == 200  # noqa: E731
        wait_until(healthy, 20, f"{server.site.name} built its outputs")
        assert server.client.get("/healthz").json() == {"status": "ok", "output": True}
        assert status(server, "/") == 200
        assert status(server, "/articles/kospi-rebounds-as-chipmakers-lead-gains.html") == 200
        assert status(server, NEW_PAGE) == 404

    new_story(editor)
    publish(editor, "collect")
    for server in servers:
        wait_until(lambda s=server: current(s, NEW_PAGE), 20, f"{server.site.name} serves the new story")
        assert "Night markets return" in server.client.get("/").text
        assert server.client.get("/healthz").status_code == 200

    correct_the_seed(editor)
    (editor / NEW_STORY).unlink()  # the source no longer has it: withdrawn
    publish(editor, "collect")
    for server in servers:
        wait_until(
            lambda s=server: current(s, "/articles/openai-to-open-office-in-seoul.html", "12 global cities"),
            20,
            f"{server.site.name} serves the correction",
        )
        wait_until(lambda s=server: status(s, NEW_PAGE) == 404, 20, f"{server.site.name} drops the story")
        assert not (server.site / "public" / NEW_PAGE.lstrip("/")).exists()

    publish(editor, "digest")  # an issue of the daily digest archived (no subscribers: nothing sent)
    issue = next((editor / "public" / "digests" / "digest").glob("20*.html")).name
    for server in servers:
        wait_until(
            lambda s=server: current(s, f"/digests/digest/{issue}"), 20, f"{server.site.name} archives it"
        )

    embargoed_story(url_of(editor), seconds=3)  # stored now, out in 3 s: no change marks that moment
    for server in servers:
        wait_until(lambda s=server: status(s, EMBARGOED) == 200, 20, f"{server.site.name} releases it")


def test_a_node_that_cannot_build_answers_503_with_the_reason(tmp_path: Path) -> None:
    port = free_port()
    site = make_site(tmp_path / "site", port)
    (site / "blocked").write_text("a file where the output folder should be")
    edit_config(site, 'dir = "public"', 'dir = "blocked/public"')
    publish(site, "collect")
    server = Server(site, port)
    try:
        wait_until(lambda: "cannot build" in server.log.read_text(), 20, "the build failed")
        r = server.client.get("/healthz")
        assert r.status_code == 503 and "no web edition in" in r.json()["output"], r.text
        log = server.log.read_text()
        assert "blocked/public" in log and "Traceback" not in log, log
    finally:
        server.stop()
