"""Feed sources against a real HTTP server on 127.0.0.1: 200, 304, 500, redirects,
slow and oversized answers; the ETag/Last-Modified kept in the store between runs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from publisher.collect import collect
from publisher.config import from_dict
from publisher.store import Store
from tests.feed_server import answer, conditional

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)

RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/">
<channel><title>Upstream</title><link>https://upstream.example/</link><description>d</description>
<item>
  <title>Chip makers &amp; the &lt;b&gt;won&lt;/b&gt;</title>
  <link>https://upstream.example/a/1</link>
  <guid isPermaLink="false">upstream-1</guid>
  <pubDate>Mon, 26 May 2025 14:50:00 +0900</pubDate>
  <author>kim@upstream.example (Kim Min-ji)</author>
  <category>Business</category>
  <media:thumbnail url="https://upstream.example/img/1.jpg"/>
  <description>&lt;p onclick="steal()"&gt;Exports rose.&lt;script&gt;alert(1)&lt;/script&gt;&lt;/p&gt;
  &lt;p&gt;&lt;a href="javascript:alert(2)"&gt;more&lt;/a&gt; &lt;img src="x.png" onerror="alert(3)"&gt;&lt;/p&gt;
  &lt;iframe src="https://evil.example/"&gt;&lt;/iframe&gt;</description>
</item>
<item>
  <title>Second story</title>
  <link>https://upstream.example/a/2</link>
  <pubDate>Tue, 27 May 2025 09:00:00 +0900</pubDate>
  <description>Plain words.</description>
</item>
</channel></rss>
"""

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Atom upstream</title><id>urn:x</id>
<updated>2025-05-28T00:00:00Z</updated>
<entry><title type="html">Lanterns &lt;em&gt;lit&lt;/em&gt;</title><id>urn:entry:1</id>
<link href="https://atom.example/e/1"/><updated>2025-05-28T10:00:00+09:00</updated>
<published>2025-05-28T09:00:00+09:00</published>
<author><name>Lee Ha-eun</name></author>
<content type="html">&lt;p&gt;Bright.&lt;/p&gt;&lt;style&gt;p{color:red}&lt;/style&gt;</content></entry>
</feed>
"""


def make_config(tmp_path: Path, *sources: dict[str, Any]):
    data = {"site": {"timezone": "Asia/Seoul"}, "sources": list(sources)}
    return from_dict(data, tmp_path / "config.toml")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    yield s
    s.close()


def test_feed_entries_become_sanitised_articles(tmp_path, upstream, store):
    upstream.routes["/rss"] = answer(200, RSS.encode(), Content_Type="application/rss+xml")
    config = make_config(tmp_path, {"type": "feed", "url": upstream.url("/rss"), "name": "up"})
    report = collect(config, store, NOW)
    assert (report.new, report.failed_sources, report.skipped) == (2, [], 0)
    second, first = sorted(store.articles.published(NOW), key=lambda a: a.id)
    assert first.id == "up/upstream-1"
    assert first.title == "Chip makers & the won"
    assert first.published == datetime(2025, 5, 26, 5, 50, tzinfo=UTC)
    assert [(a.name, a.email) for a in first.article.authors] == [("Kim Min-ji", "kim@upstream.example")]
    assert first.article.categories == ("Business",)
    assert first.article.image == "https://upstream.example/img/1.jpg"
    assert first.article.url == "https://upstream.example/a/1"
    body = first.article.body
    assert "Exports rose." in body
    for bad in ("script", "onclick", "onerror", "javascript:", "iframe", "alert"):
        assert bad not in body, bad
    assert first.article.summary.startswith("Exports rose.")
    assert second.id == "up/https://upstream.example/a/2"  # no guid: the link is the id
    assert second.article.body == "Plain words."
    [(path, headers)] = upstream.requests
    assert headers["User-Agent"].startswith("publisher/")


def test_atom_titles_and_source_category(tmp_path, upstream, store):
    upstream.routes["/atom"] = answer(200, ATOM.encode(), Content_Type="application/atom+xml")
    config = make_config(
        tmp_path, {"type": "feed", "url": upstream.url("/atom"), "name": "atom", "category": "Culture"}
    )
    assert collect(config, store, NOW).new == 1
    [article] = store.articles.published(NOW)
    assert article.title == "Lanterns lit"
    assert article.article.categories == ("Culture",)
    assert article.article.body == "<p>Bright.</p>"
    assert article.published == datetime(2025, 5, 28, 0, 0, tzinfo=UTC)
    assert article.article.authors[0].name == "Lee Ha-eun"


def test_conditional_get_uses_the_validators_kept_in_the_store(tmp_path, upstream, store):
    upstream.routes["/rss"] = conditional(RSS.encode(), '"v1"', "Mon, 26 May 2025 06:00:00 GMT")
    config = make_config(tmp_path, {"type": "feed", "url": upstream.url("/rss"), "name": "up"})
    assert collect(config, store, NOW).new == 2
    assert store.sources.get("up").state == {"etag": '"v1"', "last_modified": "Mon, 26 May 2025 06:00:00 GMT"}
    store.close()
    reopened = Store.open(store.engine.url.render_as_string())  # a later run, a new process
    report = collect(config, reopened, NOW + timedelta(minutes=15))
    assert (report.new, report.updated, report.unchanged, report.failed_sources) == (0, 0, 2, [])
    assert upstream.requests[1][1]["If-None-Match"] == '"v1"'
    assert upstream.requests[1][1]["If-Modified-Since"] == "Mon, 26 May 2025 06:00:00 GMT"
    assert len(reopened.articles.published(NOW)) == 2
    reopened.close()


def test_changed_entry_keeps_its_id_and_entries_leaving_the_feed_stay(tmp_path, upstream, store):
    upstream.routes["/rss"] = answer(200, RSS.encode(), Content_Type="application/rss+xml")
    config = make_config(tmp_path, {"type": "feed", "url": upstream.url("/rss"), "name": "up"})
    collect(config, store, NOW)
    shorter = RSS.replace("Exports rose.", "Exports rose sharply.")
    shorter = shorter[: shorter.index("<item>\n  <title>Second")] + "</channel></rss>"
    upstream.routes["/rss"] = answer(200, shorter.encode(), Content_Type="application/rss+xml")
    report = collect(config, store, NOW + timedelta(hours=1))
    assert (report.new, report.updated, report.withdrawn) == (0, 1, 0)
    articles = {a.id: a for a in store.articles.published(NOW + timedelta(hours=1))}
    assert set(articles) == {"up/upstream-1", "up/https://upstream.example/a/2"}
    assert "Exports rose sharply." in articles["up/upstream-1"].article.body
    assert articles["up/upstream-1"].updated == NOW + timedelta(hours=1)


def test_a_failing_feed_is_reported_and_the_others_are_collected(tmp_path, upstream, store):
    upstream.routes["/broken"] = answer(500, b"oops")
    upstream.routes["/rss"] = answer(200, RSS.encode(), Content_Type="application/rss+xml")
    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "a.txt").write_text("Local story\nPublished: 2025-05-30 10:00\nBody.\n", encoding="utf-8")
    config = make_config(
        tmp_path,
        {"type": "feed", "url": upstream.url("/broken"), "name": "broken"},
        {"type": "directory", "path": str(folder), "name": "local"},
        {"type": "feed", "url": upstream.url("/rss"), "name": "up"},
    )
    report = collect(config, store, NOW)
    assert report.failed_sources == [upstream.url("/broken")]
    assert report.new == 3
    assert (
        f"{upstream.url('/broken')}: source failed: {upstream.url('/broken')}: HTTP 500" in report.warnings[0]
    )
    status = store.sources.get("broken")
    assert not status.ok and "HTTP 500" in status.error
    assert store.sources.get("up").ok


def test_a_failed_fetch_keeps_the_last_good_validators(tmp_path, upstream, store):
    upstream.routes["/rss"] = conditional(RSS.encode(), '"v1"', "Mon, 26 May 2025 06:00:00 GMT")
    config = make_config(tmp_path, {"type": "feed", "url": upstream.url("/rss"), "name": "up"})
    collect(config, store, NOW)
    upstream.routes["/rss"] = answer(503, b"")
    assert collect(config, store, NOW).failed_sources
    assert store.sources.get("up").state["etag"] == '"v1"'


def test_a_slow_server_is_given_up_on(tmp_path, upstream, store):
    def slow(h: BaseHTTPRequestHandler) -> None:
        time.sleep(2)
        answer(200, RSS.encode())(h)

    upstream.routes["/slow"] = slow
    config = make_config(tmp_path, {"type": "feed", "url": upstream.url("/slow"), "timeout": 0.3})
    started = time.monotonic()
    report = collect(config, store, NOW)
    assert time.monotonic() - started < 1.5
    assert report.failed_sources == [upstream.url("/slow")]
    assert "no answer within 0.3 s" in report.warnings[0]


def test_a_trickling_download_is_cut_off(tmp_path, upstream, store):
    def trickle(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/rss+xml")
        h.end_headers()
        for _ in range(40):
            h.wfile.write(b" " * 16)
            h.wfile.flush()
            time.sleep(0.1)

    upstream.routes["/trickle"] = trickle
    config = make_config(tmp_path, {"type": "feed", "url": upstream.url("/trickle"), "timeout": 0.3})
    started = time.monotonic()
    report = collect(config, store, NOW)
    assert time.monotonic() - started < 2.5
    assert "download took longer than 0.9 s" in report.warnings[0]


def test_oversized_feeds_are_refused(tmp_path, upstream, store):
    big = RSS.replace("Plain words.", "x" * 5000).encode()
    upstream.routes["/declared"] = answer(200, big)

    def chunked(h: BaseHTTPRequestHandler) -> None:  # no Content-Length: counted while reading
        h.send_response(200)
        h.send_header("Connection", "close")
        h.end_headers()
        h.wfile.write(big)

    upstream.routes["/chunked"] = chunked
    for path in ("/declared", "/chunked"):
        config = make_config(tmp_path, {"type": "feed", "url": upstream.url(path), "max_feed_bytes": 4096})
        report = collect(config, store, NOW)
        assert report.failed_sources == [upstream.url(path)], path
        assert "too large" in report.warnings[0] and "max_feed_bytes = 4096" in report.warnings[0]


def test_redirects_are_followed_and_loops_are_not(tmp_path, upstream, store):
    upstream.routes["/old"] = answer(301, Location="/rss")
    upstream.routes["/rss"] = answer(200, RSS.encode(), Content_Type="application/rss+xml")
    upstream.routes["/loop"] = answer(302, Location="/loop")
    config = make_config(
        tmp_path,
        {"type": "feed", "url": upstream.url("/old"), "name": "moved"},
        {"type": "feed", "url": upstream.url("/loop"), "name": "loop"},
    )
    report = collect(config, store, NOW)
    assert report.new == 2
    assert report.failed_sources == [upstream.url("/loop")]
    assert "more than 5 redirects" in report.warnings[0]


def test_a_web_page_is_not_a_feed(tmp_path, upstream, store):
    upstream.routes["/page"] = answer(
        200, b"<html><body><p>Hello</p></body></html>", Content_Type="text/html"
    )
    config = make_config(tmp_path, {"type": "feed", "url": upstream.url("/page")})
    report = collect(config, store, NOW)
    assert report.failed_sources == [upstream.url("/page")]
    assert "not a feed" in report.warnings[0]


def test_nobody_listening_is_a_reported_failure(tmp_path, store):
    config = make_config(tmp_path, {"type": "feed", "url": "http://127.0.0.1:9/feed.xml"})
    report = collect(config, store, NOW)
    assert report.failed_sources == ["http://127.0.0.1:9/feed.xml"]
    assert "ConnectError" in report.warnings[0]


def test_repeated_entry_ids_and_forbidden_characters(tmp_path, upstream, store):
    doubled = RSS.replace(
        "</channel>",
        '<item><title>Copy</title><guid isPermaLink="false">upstream-1</guid>'
        "<description>Copy &amp;#1; with &#x2028;a separator</description></item></channel>",
    )
    doubled = doubled.replace("Plain words.", "Plain&amp;#1; words&amp;#xFFFF;.")
    upstream.routes["/rss"] = answer(200, doubled.encode(), Content_Type="application/rss+xml")
    config = make_config(tmp_path, {"type": "feed", "url": upstream.url("/rss"), "name": "up"})
    report = collect(config, store, NOW)
    assert (report.new, report.skipped) == (2, 1)
    assert "repeats the id of an earlier entry (up/upstream-1)" in report.warnings[0]
    by_id = {a.id: a for a in store.articles.published(NOW)}
    assert by_id["up/upstream-1"].title == "Chip makers & the won"  # the first one wins
    assert by_id["up/https://upstream.example/a/2"].article.body == "Plain words."
