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
from datetime import timedelta

import pytest

from publisher import feeds
from publisher.collect import CollectReport, collect
from publisher.config import Config, from_dict
from publisher.models import StoredArticle
from publisher.store import Store
from tests.feed_server import Upstream, answer
from tests.feedcheck import assert_valid
from tests.outcomes import outcomes
from tests.upstream_corpus import CORPUS, NOW, corpus_config, serve_corpus

PAPER = "http://www.chuncheon-ilbo.example.kr/news/articleView.html?idxno="
EXPECTED = outcomes("upstream")  # article id -> its title, url, date, authors and body
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
def corpus_server() -> Iterator[Upstream]:
    with serve_corpus() as server:
        yield server


@pytest.fixture(scope="module")
def collected(
    tmp_path_factory: pytest.TempPathFactory, corpus_server: Upstream
) -> Iterator[tuple[Config, Store, CollectReport]]:
    tmp = tmp_path_factory.mktemp("upstream-corpus")
    config = corpus_config(tmp, corpus_server)
    store = Store.open(f"sqlite:///{tmp / 'store.db'}")
    report = collect(config, store, NOW + timedelta(microseconds=914923))
    yield config, store, report
    store.close()


def published(store: Store) -> dict[str, StoredArticle]:
    return {a.id: a for a in store.articles.published(NOW + timedelta(days=1))}


def test_every_upstream_entry_has_its_exact_outcome(collected, corpus_server):
    config, store, report = collected
    assert (report.failed_sources, report.new, report.skipped) == ([], len(EXPECTED), len(SKIPPED))
    by_id = published(store)
    assert sorted(by_id) == sorted(EXPECTED)
    first_seen = {article_id: NOW - timedelta(seconds=i) for i, article_id in enumerate(DATELESS)}
    for article_id, want in EXPECTED.items():
        got = by_id[article_id]
        assert got.title == want.title, article_id
        assert got.article.url == want.url, article_id
        assert got.published == (want.published or first_seen[article_id]), article_id
        assert [(a.name, a.email) for a in got.article.authors] == want.authors, article_id
        assert got.article.body == want.body, article_id
        assert not any("\x80" <= c <= "\x9f" for c in got.title + got.article.body + got.article.summary)
    for name, number, reason in SKIPPED:
        assert any(
            w.startswith(f"{corpus_server.url('/' + name)} entry {number} ") and w.endswith(reason)
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


def test_an_entry_without_guid_and_link_edited_upstream_stays_one_article(tmp_path, upstream):
    original = (CORPUS / "missing.rss").read_bytes()
    upstream.routes["/missing.rss"] = answer(200, original, Content_Type="application/rss+xml")
    config = from_dict(
        {"sources": [{"type": "feed", "url": upstream.url("/missing.rss"), "name": "m"}]},
        tmp_path / "c.toml",
    )
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        collect(config, store, NOW)
        edited = original.replace(b"Show notes, first version.", b"Show notes, corrected.")
        edited = edited.replace(b"Episode 12: no guid, no link", b"Episode 12 (corrected title)")
        upstream.routes["/missing.rss"] = answer(200, edited, Content_Type="application/rss+xml")
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
