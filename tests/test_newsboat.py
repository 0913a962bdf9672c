"""newsboat, a real feed reader, loads the RSS and Atom feeds over HTTP."""

from __future__ import annotations

import calendar
import sqlite3
from pathlib import Path

import feedparser
import pytest

from tests.httpserve import serve_folder
from tests.readers import newsboat
from tests.sites import require_binary


@pytest.mark.parametrize("name", ["rss.xml", "atom.xml", "categories/business/rss.xml"])
def test_newsboat_loads_every_item_with_title_author_and_date(
    demo_public: Path, tmp_path: Path, name: str
) -> None:
    binary = require_binary("newsboat")
    expected = feedparser.parse((demo_public / name).read_bytes())
    with serve_folder(demo_public) as base:
        url = base + name
        _, unread = newsboat(binary, tmp_path, [url], "reload", "print-unread")
    assert unread == f"{len(expected.entries)} unread articles"
    with sqlite3.connect(tmp_path / "cache.db") as db:
        feed_title = db.execute("select title from rss_feed where rssurl = ?", (url,)).fetchone()[0]
        rows = db.execute(
            "select title, author, url, pubDate from rss_item where feedurl = ? order by pubDate desc", (url,)
        ).fetchall()
    assert feed_title == expected.feed.title
    assert [r[0] for r in rows] == [e.title for e in expected.entries]
    assert [r[2] for r in rows] == [e.link for e in expected.entries]
    for (_, author, _, stamp), entry in zip(rows, expected.entries, strict=True):
        assert author and author == ", ".join(a.name for a in entry.authors)  # every author
        assert stamp == calendar.timegm(entry.published_parsed)
