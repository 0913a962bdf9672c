"""The upstream corpus (tests/fixtures/upstream): ugly feeds of every kind served over
HTTP on 127.0.0.1, collected for real, each entry with its exact outcome; then the
site's feeds built from them pass the W3C validator.

Author forms (Atom name + e-mail, several authors, RSS "address (Name)" and "Name
<address>", several dc:creator), missing fields (no text, no date, no guid and no
link), titleless microblog posts, C1 control characters, relative URLs, encodings
(an EUC-KR Korean regional paper with CP949 syllables behind a server that calls it
ISO-8859-1, undeclared CP949, Windows-1252 declared as ISO-8859-1) and JSON Feed
1.0 / 1.1.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from feed_server import Upstream, answer

from publisher import feeds
from publisher.collect import CollectReport, collect
from publisher.config import Config, from_dict
from publisher.models import StoredArticle
from publisher.store import Store
from tests.feedcheck import assert_valid
from tests.upstream_corpus import CORPUS, KST, NOW, corpus_config, serve_corpus

PAPER = "http://www.chuncheon-ilbo.example.kr/news/articleView.html?idxno="
DALGALBI = (
    '<p>춘천시 명동 닭갈비 골목에 태국 음식점이 문을 열었다. 상인들은 "햏" 하며 반겼다.</p>',
    "<p>춘천시 명동 닭갈비 골목에 태국 음식점이 문을 열었다. 상인들은 크게 반겼다.</p>",
)
DAM = "한국수자원공사는 29일 오전 소양강댐 수문을 열고 방류를 시작했다."

# article id -> (title, url, published (None: first seen, see DATELESS), authors, body)
EXPECTED: dict[str, tuple[str, str | None, datetime | None, list[tuple[str, str | None]], str]] = {
    # Atom people: name and e-mail apart, every author kept
    "authors.atom/tag:blogger.com,1999:blog-1.post-1": (
        "Name and e-mail",
        "https://blog.example.com/2025/05/one.html",
        KST(2025, 5, 30, 9, 0),
        [("John", "noreply@blogger.com")],
        "<p>One.</p>",
    ),
    "authors.atom/tag:blogger.com,1999:blog-1.post-2": (
        "Two authors, one without e-mail",
        "https://blog.example.com/2025/05/two.html",
        KST(2025, 5, 29, 9, 0),
        [("Kim Min-ji", "kim@news.example.com"), ("Lee Ha-eun", None)],
        "<p>Two.</p>",
    ),
    "authors.atom/tag:blogger.com,1999:blog-1.post-3": (
        "Only an address",
        "https://blog.example.com/2025/05/three.html",
        KST(2025, 5, 28, 9, 0),
        [("desk@news.example.com", "desk@news.example.com")],
        "<p>Three.</p>",
    ),
    "authors.atom/tag:blogger.com,1999:blog-1.post-4": (
        "Nobody",
        "https://blog.example.com/2025/05/four.html",
        KST(2025, 5, 27, 9, 0),
        [],
        "<p>Four.</p>",
    ),
    # RSS people
    "authors.rss/https://rss.example.com/1": (
        "Address, then name in parentheses",
        "https://rss.example.com/1",
        KST(2025, 5, 30, 9, 0),
        [("Kim Min-ji", "kim@news.example.museum")],
        "One.",
    ),
    "authors.rss/https://rss.example.com/2": (
        "Name, then address in angle brackets",
        "https://rss.example.com/2",
        KST(2025, 5, 29, 9, 0),
        [("Lee Ha-eun", "lee@news.example.com")],
        "Two.",
    ),
    "authors.rss/https://rss.example.com/3": (
        "Two Dublin Core creators",
        "https://rss.example.com/3",
        KST(2025, 5, 28, 9, 0),
        [("Park Seo-yeon", None), ("Choi Yoon-ah", None)],
        "Three.",
    ),
    "authors.rss/https://rss.example.com/4": (
        "Two author elements",
        "https://rss.example.com/4",
        KST(2025, 5, 27, 9, 0),
        [("A One", "a.one@news.example.com"), ("B Two", "b.two@news.example.com")],
        "Four.",
    ),
    "authors.rss/https://rss.example.com/5": (
        "An address alone",
        "https://rss.example.com/5",
        KST(2025, 5, 26, 9, 0),
        [("desk@news.example.com", "desk@news.example.com")],
        "Five.",
    ),
    # missing fields: the enclosure is the identity of an entry without guid and link
    "missing.rss/https://missing.example.com/1": (
        "No text, no date",
        "https://missing.example.com/1",
        None,
        [],
        "",
    ),
    "missing.rss/missing-2": ("No date", None, None, [], "Second item, undated."),
    "missing.rss/https://cdn.missing.example.com/ep12.mp3": (
        "Episode 12: no guid, no link",
        None,
        KST(2025, 5, 31, 18, 0),
        [],
        "Show notes, first version.",
    ),
    "missing.rss/sha1-092ab0e953a150edd6ea5aecf9e04ec92fcf08f9": (
        "A headline and nothing else",
        None,
        None,
        [],
        "",
    ),
    # titleless: the first sentence, shortened on a word boundary
    "titleless.rss/https://micro.example.com/p/1": (
        "Just landed in Seoul.",
        "https://micro.example.com/p/1",
        KST(2025, 5, 31, 9, 0),
        [],
        "Just landed in Seoul. The weather is great! More later.",
    ),
    "titleless.rss/https://micro.example.com/p/2": (
        "A very long first sentence that goes on and on about the weather and the…",
        "https://micro.example.com/p/2",
        KST(2025, 5, 31, 8, 0),
        [],
        "A very long first sentence that goes on and on about the weather and the traffic and the food in the city",
    ),
    "titleless.rss/https://micro.example.com/p/3": (
        "Photo of the Han river at dusk",
        "https://micro.example.com/p/3",
        KST(2025, 5, 31, 7, 0),
        [],
        "<p>Photo of the <b>Han river</b> at dusk</p><p>Second paragraph.</p>",
    ),
    # C1 controls (U+0080-U+009F) removed, as character references and raw
    "controls.rss/https://controls.example.com/1": (
        "Bad characters",
        "https://controls.example.com/1",
        KST(2025, 5, 30, 9, 0),
        [("Name", None)],
        "<p>Text with C1 controls.</p>",
    ),
    # relative URLs resolve against xml:base
    "relative.atom/urn:relative:1": (
        "Links relative to xml:base",
        "https://atom.example.com/blog/posts/1.html",
        datetime(2025, 5, 30, 10, 0, tzinfo=UTC),
        [],
        '<p><a href="https://atom.example.com/about.html" rel="noopener noreferrer">About</a> '
        '<img alt="A" src="https://atom.example.com/blog/img/a.png"></p>',
    ),
    # encodings
    f"euc-kr.rss/{PAPER}1001": (
        '춘천 명동 닭갈비 골목, 똠양꿍 가게 개업에 "뷁" 반응',
        f"{PAPER}1001",
        KST(2025, 5, 30, 14, 20),
        [("김민지 기자", None)],
        DALGALBI[0],
    ),
    f"euc-kr.rss/{PAPER}1002": ("소양강댐 방류 시작", f"{PAPER}1002", KST(2025, 5, 29, 9, 0), [], DAM),
    f"cp949-undeclared.rss/{PAPER}2001": (
        "춘천 명동 닭갈비 골목, 태국 가게 개업에 뜨거운 반응",
        f"{PAPER}2001",
        KST(2025, 5, 30, 14, 20),
        [("김민지 기자", None)],
        DALGALBI[1],
    ),
    f"cp949-undeclared.rss/{PAPER}2002": (
        "소양강댐 방류 시작",
        f"{PAPER}2002",
        KST(2025, 5, 29, 9, 0),
        [],
        DAM,
    ),
    "windows-1252.rss/https://cafe.example.com/1": (
        "Café owners’ “fair” deal – signed",
        "https://cafe.example.com/1",
        datetime(2025, 5, 30, 9, 0, tzinfo=UTC),
        [("Renée Østergaard", None)],
        "The café’s owner said “we’re done” … and left.",
    ),
    # JSON Feed 1.0: numeric id, feed-level author, external_url; 1.1: authors, no title
    "jsonfeed-1.0.json/1001": (
        "Numbered id, feed-level author",
        "https://json10.example.com/posts/1001",
        KST(2025, 5, 30, 9, 0),
        [("Feed Author", None)],
        "<p>Hello <em>world</em>.</p>",
    ),
    "jsonfeed-1.0.json/post-2": (
        "Own author, text content",
        "https://elsewhere.example.com/story",
        datetime(2025, 5, 29, 9, 0, tzinfo=UTC),
        [("Kim Min-ji", None)],
        "<p>Line one.</p>\n<p>Line two.</p>",
    ),
    "jsonfeed-1.1.json/https://json11.example.com/p/1": (
        "Two authors",
        "https://json11.example.com/p/1",
        KST(2025, 5, 31, 9, 0),
        [("Park Seo-yeon", None), ("Choi Yoon-ah", None)],
        "<p>By two people.</p>",
    ),
    "jsonfeed-1.1.json/https://json11.example.com/p/2": (
        "A note without a title.",
        "https://json11.example.com/p/2",
        KST(2025, 5, 31, 8, 0),
        [],
        "<p>A note without a title. It has two sentences.</p>",
    ),
    "jsonfeed-1.1.json/https://json11.example.com/p/3": (
        "An attachment",
        "https://json11.example.com/p/3",
        KST(2025, 5, 31, 7, 0),
        [],
        "<p>Listen.</p>",
    ),
}
# Dateless entries, in the order their feed lists them: the time first seen, in whole
# seconds, one apart so every reader keeps them distinct and in that order.
DATELESS = [
    "missing.rss/https://missing.example.com/1",
    "missing.rss/missing-2",
    "missing.rss/sha1-092ab0e953a150edd6ea5aecf9e04ec92fcf08f9",
]
# (fixture, entry number, reason)
SKIPPED = [
    ("missing.rss", 5, "no title and no text"),
    ("titleless.rss", 4, "no title and no text"),
]


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    with serve_corpus() as server:
        yield server


@pytest.fixture(scope="module")
def collected(
    tmp_path_factory: pytest.TempPathFactory, upstream: Upstream
) -> Iterator[tuple[Config, Store, CollectReport]]:
    tmp = tmp_path_factory.mktemp("upstream-corpus")
    config = corpus_config(tmp, upstream)
    store = Store.open(f"sqlite:///{tmp / 'store.db'}")
    report = collect(config, store, NOW + timedelta(microseconds=914923))
    yield config, store, report
    store.close()


def published(store: Store) -> dict[str, StoredArticle]:
    return {a.id: a for a in store.articles.published(NOW + timedelta(days=1))}


def test_every_upstream_entry_has_its_exact_outcome(collected, upstream):
    config, store, report = collected
    assert (report.failed_sources, report.new, report.skipped) == ([], len(EXPECTED), len(SKIPPED))
    by_id = published(store)
    assert sorted(by_id) == sorted(EXPECTED)
    first_seen = {article_id: NOW - timedelta(seconds=i) for i, article_id in enumerate(DATELESS)}
    for article_id, (title, url, when, authors, body) in EXPECTED.items():
        got = by_id[article_id]
        assert got.title == title, article_id
        assert got.article.url == url, article_id
        assert got.published == (when or first_seen[article_id]), article_id
        assert [(a.name, a.email) for a in got.article.authors] == authors, article_id
        assert got.article.body == body, article_id
        assert not any("\x80" <= c <= "\x9f" for c in got.title + got.article.body + got.article.summary)
    for name, number, reason in SKIPPED:
        assert any(
            w.startswith(f"{upstream.url('/' + name)} entry {number} ") and w.endswith(reason)
            for w in report.warnings
        )


def test_dateless_entries_get_distinct_whole_seconds_in_upstream_order(collected):
    _, store, _ = collected
    by_id = published(store)
    stamps = [by_id[i].published for i in DATELESS]
    assert stamps == sorted(stamps, reverse=True) and len(set(stamps)) == len(stamps)
    assert all(s.microsecond == 0 for s in stamps)
    out = feeds.build(collected[0], store.articles.published(NOW + timedelta(days=1)))
    assert b".914923" not in out["atom.xml"] and b".914923" not in out["feed.json"]


def test_the_site_feeds_built_from_the_corpus_pass_the_validator(collected):
    config, store, _ = collected
    out = feeds.build(config, store.articles.published(NOW + timedelta(days=1)))
    assert_valid(out)
    assert b"noreply@blogger.com)" not in out["rss.xml"] + out["atom.xml"] + out["feed.json"]


def test_the_korean_regional_paper_keeps_its_categories_and_text(collected):
    _, store, _ = collected
    got = published(store)[f"euc-kr.rss/{PAPER}1001"]
    assert got.article.categories == ("지역",)
    assert "똠" in got.title and "햏" in got.article.summary


def test_an_entry_without_guid_and_link_edited_upstream_stays_one_article(tmp_path):
    original = (CORPUS / "missing.rss").read_bytes()
    server = Upstream()
    try:
        server.routes["/missing.rss"] = answer(200, original, Content_Type="application/rss+xml")
        config = from_dict(
            {"sources": [{"type": "feed", "url": server.url("/missing.rss"), "name": "m"}]},
            tmp_path / "c.toml",
        )
        store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
        try:
            collect(config, store, NOW)
            edited = original.replace(b"Show notes, first version.", b"Show notes, corrected.")
            edited = edited.replace(b"Episode 12: no guid, no link", b"Episode 12 (corrected title)")
            server.routes["/missing.rss"] = answer(200, edited, Content_Type="application/rss+xml")
            report = collect(config, store, NOW + timedelta(hours=1))
            assert (report.new, report.updated) == (0, 1)
            episode = published(store)["m/https://cdn.missing.example.com/ep12.mp3"]
            assert (episode.title, episode.article.body) == (
                "Episode 12 (corrected title)",
                "Show notes, corrected.",
            )
            # the dateless ones keep the second they were first given
            assert published(store)["m/missing-2"].published == NOW - timedelta(seconds=1)
        finally:
            store.close()
    finally:
        server.close()
