"""The article store: identity by id, unique slugs, batches, withdrawal, embargo."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from publisher.models import Article
from publisher.store import Store
from publisher.store.articles import Saving

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
    untitled = Article(id="s/ko", source="s", title="서울", body="<p>x</p>", published=NOW)
    store.articles.save(untitled, NOW)
    assert {a.id: a.slug for a in store.articles.published(NOW)}["s/ko"].startswith("article-")
    store.close()


def test_an_update_keeps_id_and_slug_and_moves_updated(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'db'}")
    store.articles.save(art("a"), NOW)
    later = NOW + timedelta(hours=2)
    changed = Article(
        id="s/a", source="s", title="New title", body="<p>new</p>", published=NOW - timedelta(days=1)
    )
    assert store.articles.save(changed, later) == "updated"
    [stored] = store.articles.published(later)
    assert (stored.slug, stored.title, stored.updated) == ("same-title", "New title", later)
    assert store.articles.withdraw(["s/a", "s/missing"], later) == ["s/a"]
    assert store.articles.withdraw(["s/a"], later) == []  # already withdrawn
    assert store.articles.published(later) == []
    store.close()


def test_an_embargoed_article_appears_at_its_time(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'db'}")
    at = NOW + timedelta(hours=3)
    store.articles.save(Article(id="s/e", source="s", title="Later", body="<p>x</p>", published=at), NOW)
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
