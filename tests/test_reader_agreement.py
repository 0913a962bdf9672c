"""Two real readers, newsboat (over HTTP) and feedparser, read our RSS and Atom feeds
and agree with feed.json on the title, link, date and every author of every item:
for the demo site, the upstream corpus (author forms, encodings, titleless and
dateless entries, JSON Feed) and articles with hostile titles and names."""

from __future__ import annotations

import calendar
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import pytest

from publisher import feeds
from publisher.collect import collect
from publisher.config import from_dict
from publisher.models import Article, Author, StoredArticle
from publisher.store import Store
from tests.httpserve import serve_folder
from tests.readers import newsboat
from tests.sites import require_binary
from tests.upstream_corpus import NOW, corpus_config, serve_corpus

FORMATS = ("rss.xml", "atom.xml")


def write(folder: Path, built: dict[str, bytes]) -> Path:
    for rel, data in built.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return folder


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("agree-corpus")
    store = Store.open(f"sqlite:///{tmp / 'store.db'}")
    try:
        with serve_corpus() as upstream:
            config = corpus_config(tmp, upstream)
            collect(config, store, NOW)
        built = feeds.build(config, store.articles.published(NOW + timedelta(days=1)))
    finally:
        store.close()
    return write(tmp / "public", built)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("agree-hostile")
    site = {"timezone": "Asia/Seoul", "base_url": "http://127.0.0.1:8000/", "title": "Hostile & <Daily>"}
    config = from_dict({"site": site}, tmp / "config.toml")
    when = datetime(2025, 5, 1, 3, 0, tzinfo=UTC)
    titles = ["Council debates <script>… signage rules", "Why <b> is not <strong>", "Fish & chips > salad"]
    people = [(Author("Kim <Min-ji>", "kim@news.example.com"),), (Author("O'Neil & Sons"), Author("Lee"))]
    articles = [
        StoredArticle(
            Article(id=f"h/{i}", source="h", title=t, body=f"<p>{i}</p>", authors=people[i % 2]),
            f"h-{i}",
            when - timedelta(hours=i),
            when - timedelta(hours=i),
            when,
        )
        for i, t in enumerate(titles)
    ]
    return write(tmp / "public", feeds.build(config, articles))


def json_items(public: Path) -> list[dict]:
    return json.loads((public / "feed.json").read_text("utf-8"))["items"]


def epoch(value: str) -> int:
    return calendar.timegm(datetime.fromisoformat(value).utctimetuple())


@pytest.mark.parametrize("which", ["demo_public", "corpus", "hostile"])
def test_feedparser_agrees_with_feed_json(request: pytest.FixtureRequest, which: str) -> None:
    public: Path = request.getfixturevalue(which)
    expected = json_items(public)
    for name in FORMATS:
        got = feedparser.parse((public / name).read_bytes())
        assert not got.bozo, (name, got.get("bozo_exception"))
        assert len(got.entries) == len(expected), name
        for entry, item in zip(got.entries, expected, strict=True):
            assert entry.title == item["title"], name
            assert entry.link == item["url"], name
            assert calendar.timegm(entry.published_parsed) == epoch(item["date_published"]), name
            names = [a["name"] for a in item.get("authors", [])]
            if name == "rss.xml":  # one dc:creator naming all (readers show only one element)
                assert entry.get("author", "") == ", ".join(names), (name, item["title"])
            elif names:  # a person known only by address is that address (feedparser: e-mail)
                shown = [a.get("name") or a.get("email") for a in entry.get("authors", [])]
                assert shown == names, item["title"]
            else:  # Atom: none of its own; the feed's author (the publication) stands in
                assert not entry.get("authors") and got.feed.author, item["title"]


@pytest.mark.parametrize("which", ["demo_public", "corpus", "hostile"])
def test_newsboat_agrees_with_feed_json(request: pytest.FixtureRequest, tmp_path: Path, which: str) -> None:
    binary = require_binary("newsboat")
    public: Path = request.getfixturevalue(which)
    expected = {item["url"]: item for item in json_items(public)}
    with serve_folder(public) as base:
        for name in FORMATS:  # one cache each: newsboat keys items by guid, shared by both feeds
            url = base + name
            home = tmp_path / name
            home.mkdir()
            newsboat(binary, home, [url], "reload")
            with sqlite3.connect(home / "cache.db") as db:
                rows = db.execute(
                    "select title, url, author, pubDate from rss_item where feedurl = ?", (url,)
                ).fetchall()
            assert len(rows) == len(expected), url
            for title, link, author, stamp in rows:
                item = expected[link]
                assert title == item["title"], (url, link)
                assert stamp == epoch(item["date_published"]), (url, link)
                names = [a["name"] for a in item.get("authors", [])]
                if names:
                    assert author == ", ".join(names), (url, link)
