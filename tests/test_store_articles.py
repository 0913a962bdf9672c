"""The article store: identity by id, unique slugs, batches, withdrawal, embargo."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime, timedelta

from publisher.models import Article, Saving
from publisher.store import Store

NOW = datetime(2025, 6, 1, tzinfo=UTC)


def art(i: str, title: str = "Same title", **kw) -> Article:
    return Article(
        id=f"s/{i}", source="s", title=title, body=f"<p>{i}</p>", published=NOW - timedelta(days=1), **kw
    )


def test_slugs_stay_unique_within_and_across_batches(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'db'}")
    assert store.articles.save_many([Saving(art("a")), Saving(art("b")), Saving(art("c", "Other"))], NOW) == [
        "new",
        "new",
        "new",
    ]
    assert store.articles.save_many([Saving(art("d")), Saving(art("a"))], NOW) == ["new", "unchanged"]
    slugs = {a.id: a.slug for a in store.articles.published(NOW)}
    assert slugs == {"s/a": "same-title", "s/b": "same-title-2", "s/c": "other", "s/d": "same-title-3"}
    untitled = Article(id="s/sym", source="s", title="★ — ★", body="<p>x</p>", published=NOW)
    store.articles.save_many([Saving(untitled)], NOW)
    assert {a.id: a.slug for a in store.articles.published(NOW)}["s/sym"].startswith("article-")
    store.close()


def test_hangul_titles_give_readable_unique_slugs(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'db'}")
    decomposed = unicodedata.normalize("NFD", "서울 지하철 9호선 개통")  # the same title, as jamo
    titles = {
        "k1": "서울 지하철 9호선 개통",
        "k2": "서울 지하철 9호선 개통",
        "k3": decomposed,
        "k4": "3·1절 기념식, 광화문에서",
        "k5": "AI 반도체에 10조 원 투자",
        "k6": "“인공지능” 시대의 신문",
    }
    store.articles.save_many([Saving(art(k, t)) for k, t in titles.items()], NOW)
    slugs = {a.id: a.slug for a in store.articles.published(NOW)}
    assert slugs == {
        "s/k1": "서울-지하철-9호선-개통",
        "s/k2": "서울-지하철-9호선-개통-2",
        "s/k3": "서울-지하철-9호선-개통-3",  # NFC: one spelling, so a collision, not a look-alike
        "s/k4": "3-1절-기념식-광화문에서",
        "s/k5": "ai-반도체에-10조-원-투자",
        "s/k6": "인공지능-시대의-신문",
    }
    assert all(unicodedata.is_normalized("NFC", s) for s in slugs.values())
    long = art("long", "가" * 300)
    store.articles.save_many([Saving(long)], NOW)
    slug = {a.id: a.slug for a in store.articles.published(NOW)}["s/long"]
    assert len(slug) == 66 and len((slug + ".html").encode()) < 255  # 200 bytes of UTF-8
    store.close()


def test_a_slug_once_given_never_changes(tmp_path):
    """Slugs given before Hangul was kept (an ASCII leftover, a hash) stay as they were."""
    store = Store.open(f"sqlite:///{tmp_path / 'db'}")
    store.articles.save_many([Saving(art("old", "AI 반도체"))], NOW)
    with store.engine.begin() as conn:  # what the earlier slug rule stored
        conn.exec_driver_sql("UPDATE articles SET slug = 'ai' WHERE id = 's/old'")
    edited = art("old", "AI 반도체 투자 확대", summary="고침")
    assert store.articles.save_many([Saving(edited)], NOW + timedelta(hours=1)) == ["updated"]
    assert [a.slug for a in store.articles.published(NOW + timedelta(hours=1))] == ["ai"]
    store.close()


def test_an_update_keeps_id_and_slug_and_moves_updated(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'db'}")
    store.articles.save_many([Saving(art("a"))], NOW)
    later = NOW + timedelta(hours=2)
    changed = Article(
        id="s/a", source="s", title="New title", body="<p>new</p>", published=NOW - timedelta(days=1)
    )
    assert store.articles.save_many([Saving(changed)], later) == ["updated"]
    [stored] = store.articles.published(later)
    assert (stored.slug, stored.title, stored.updated) == ("same-title", "New title", later)
    assert store.articles.withdraw(["s/a", "s/missing"], later) == ["s/a"]
    assert store.articles.withdraw(["s/a"], later) == []  # already withdrawn
    assert store.articles.published(later) == []
    store.close()


def test_an_embargoed_article_appears_at_its_time(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'db'}")
    at = NOW + timedelta(hours=3)
    store.articles.save_many(
        [Saving(Article(id="s/e", source="s", title="Later", body="<p>x</p>", published=at))], NOW
    )
    assert store.articles.published(NOW) == [] and store.articles.not_yet_in_digest(NOW) == []
    assert [a.id for a in store.articles.published(at)] == ["s/e"]
    assert [a.id for a in store.articles.not_yet_in_digest(at)] == ["s/e"]
    assert store.articles.counts(NOW)["published"] == 0
    store.close()


def test_articles_read_back_whole_with_aware_times_and_their_content_hash(tmp_path):
    from zoneinfo import ZoneInfo

    from publisher.models import Author

    seoul = ZoneInfo("Asia/Seoul")
    store = Store.open(f"sqlite:///{tmp_path / 'db'}")
    shared = {
        "authors": (Author("Kim Ji-hye", "kim@example.com"), Author("Lee")),
        "categories": ("Politics",),
    }
    first = art("a", "One", summary="S", credits=("Edited by staff.",), **shared)
    second = Article(
        id="s/b",
        source="s",
        title="Two",
        body="<p>b</p>",
        published=datetime(2025, 5, 30, 9, 15, 7, 123456, tzinfo=seoul),
        **shared,
    )
    store.articles.save_many([Saving(first), Saving(second)], NOW)
    back = {a.id: a for a in store.articles.published(NOW)}
    # whole seconds: no timestamp anywhere carries a fraction (newsboat reads one 9 hours late)
    whole = second.published.replace(microsecond=0)
    assert back["s/b"].published == whole and back["s/b"].published.utcoffset() == timedelta(0)
    for saved in (first, second):
        got = back[saved.id]
        assert got.article.authors == saved.authors and got.article.categories == saved.categories
        assert got.content_hash == saved.content_hash
    assert back["s/a"].article.credits == ("Edited by staff.",) and back["s/b"].article.credits == ()
