"""WebSub: feeds name the hub, and changed feeds (only those) are announced to it."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from urllib.parse import parse_qs

import feedparser
import pytest

from publisher import websub
from tests.httpserve import recording_server
from tests.sites import demo_site, edit_config, publish

FEEDS = [p + n for p in ("", "categories/business/", "categories/culture/", "categories/sports/")
         for n in ("rss.xml", "atom.xml", "feed.json")]  # fmt: skip


def make_site(tmp_path: Path, hub: str) -> Path:
    site = demo_site(tmp_path / "site")
    edit_config(site, "[feeds]\n", f'[feeds]\nwebsub_hub = "{hub}"\n')
    return site


def announced(received: list[tuple[str, str, bytes]]) -> list[str]:
    urls = []
    for path, kind, body in received:
        assert path == "/hub" and kind == "application/x-www-form-urlencoded"
        form = parse_qs(body.decode("ascii"))
        assert form["hub.mode"] == ["publish"]
        urls += form["hub.url"]
    return urls


@pytest.mark.slow
def test_feeds_carry_the_hub_and_changed_feeds_are_announced(tmp_path: Path) -> None:
    with recording_server() as (hub, received):
        site = make_site(tmp_path, hub)
        publish(site, "now", "--no-email")
        base = "http://127.0.0.1:8000/"
        assert sorted(announced(received)) == sorted(base + p for p in FEEDS)
        public = site / "public"
        for name in ("rss.xml", "atom.xml"):
            links = feedparser.parse((public / name).read_bytes()).feed.links
            assert [ln.href for ln in links if ln.rel == "hub"] == [hub]
        assert json.loads((public / "feed.json").read_text("utf-8"))["hubs"] == [
            {"type": "WebSub", "url": hub}
        ]

        received.clear()
        publish(site, "now", "--no-email")
        assert received == []  # nothing changed: nothing announced

        seed = site / "seeds" / "003_lantern_festival.md"
        seed.write_text(seed.read_text("utf-8").replace("700 handmade", "800 handmade"), "utf-8")
        publish(site, "now", "--no-email")
        assert sorted(announced(received)) == sorted(
            base + p for p in FEEDS if "/" not in p or p.startswith("categories/culture/")
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_hub_that_is_down_or_refuses_never_fails_the_run(tmp_path: Path) -> None:
    site = make_site(tmp_path, f"http://127.0.0.1:{free_port()}/hub")
    result = publish(site, "now", "--no-email")
    assert (site / "public" / "rss.xml").is_file()
    assert "WebSub" in result.stderr
    with recording_server(status=500) as (hub, received):
        assert websub.announce(hub, ["http://127.0.0.1:8000/rss.xml"]) == 0
        assert len(received) == 1
    with recording_server(status=204) as (hub, received):
        assert websub.announce(hub, ["http://a.example/rss.xml", "http://a.example/atom.xml"]) == 2


@pytest.mark.parametrize("value", ["ftp://hub.example/", "not a url"])
def test_a_bad_hub_url_is_a_configuration_error(tmp_path: Path, value: str) -> None:
    site = make_site(tmp_path, value)
    result = publish(site, "now", "--no-email", check=False)
    assert result.returncode == 2 and "feeds.websub_hub" in result.stderr
