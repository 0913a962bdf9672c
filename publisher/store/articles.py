"""Articles: insert, update, withdraw, and the queries feeds, pages and digests need.

Every time the store writes is in whole seconds (readers misread fractions). An
article without a date is published at the time it was first collected; several
such articles in one run get distinct seconds, counting back from that time in the
order their sources listed them (``Saving.order``), so they keep that order in
every feed. Each article's feed id is minted once, at its first collect, and kept.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, Row, exists, func, insert, select, update

from publisher.models import Article, Author, Change, Saving, StoredArticle
from publisher.store.meta import mark_content_changed
from publisher.store.schema import articles, digest_articles, digests
from publisher.text import slugify


class FileState(NamedTuple):
    """What the store knows of one article's source file (a tuple: a second collect
    builds one per file, so it must be cheap)."""

    size: int | None
    mtime_ns: int | None
    withdrawn: bool


@dataclass(frozen=True)
class _Seen:
    content_hash: str
    first_seen: datetime
    withdrawn: datetime | None
    published: datetime
    date_missing: bool


class Articles:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def file_states(self, source: str) -> dict[str, FileState]:
        """What the store knows of each file of a source, to skip unchanged files."""
        q = select(
            articles.c.id,
            articles.c.file_size,
            articles.c.file_mtime_ns,
            articles.c.withdrawn.is_not(None),
        ).where(articles.c.source == source)
        with self.engine.connect() as conn:
            return {r[0]: FileState(r[1], r[2], bool(r[3])) for r in conn.execute(q).all()}

    def save_many(
        self, batch: list[Saving], now: datetime, mint: Callable[[str], str] | None = None
    ) -> list[Change]:
        """Store articles in one transaction (a first collect of a large archive);
        returns what became of each, in order. The id decides identity: a changed
        article keeps its id and slug and gets a new ``updated`` time; an unchanged one
        only has its file state refreshed. ``mint(article_id)`` gives a
        new article its feed id."""
        now = now.replace(microsecond=0)
        outcomes: list[Change] = []
        inserts: list[dict[str, object]] = []
        with self.engine.begin() as conn:
            ids = [item.article.id for item in batch]
            existing = {}
            for i in range(0, len(ids), 500):
                q = select(
                    articles.c.id,
                    articles.c.content_hash,
                    articles.c.first_seen,
                    articles.c.withdrawn,
                    articles.c.published,
                    articles.c.date_missing,
                ).where(articles.c.id.in_(ids[i : i + 500]))
                existing.update({r.id: r for r in conn.execute(q)})
            taken: set[str] = set()
            bases = sorted({_base_slug(i.article) for i in batch if i.article.id not in existing})
            free = set(bases)
            for i in range(0, len(bases), 500):
                q = select(articles.c.slug).where(articles.c.slug.in_(bases[i : i + 500]))
                free.difference_update(r.slug for r in conn.execute(q))
            for item in batch:
                article, content_hash = item.article, item.article.content_hash
                file_cols = {"file_size": item.file_size, "file_mtime_ns": item.file_mtime_ns}
                row = existing.get(article.id)
                if row is None:
                    published = _whole(article.published) or now - timedelta(seconds=item.order)
                    slug = self._free_slug(conn, article, taken, free)
                    taken.add(slug)
                    inserts.append(
                        {
                            "id": article.id,
                            "source": article.source,
                            "slug": slug,
                            "published": published,
                            "updated": max(_whole(article.updated) or published, published),
                            "first_seen": now,
                            "feed_id": mint(article.id) if mint else None,
                            "date_missing": article.published is None,
                            "content_hash": content_hash,
                            **_content_columns(article),
                            **file_cols,
                        }
                    )
                    existing[article.id] = _Seen(
                        content_hash, now, None, published, article.published is None
                    )
                    outcomes.append(Change.NEW)
                elif row.content_hash == content_hash and row.withdrawn is None:
                    conn.execute(update(articles).where(articles.c.id == article.id).values(**file_cols))
                    outcomes.append(Change.UNCHANGED)
                else:
                    # still dateless: keep the second it was given when first collected
                    kept = row.published if row.date_missing else row.first_seen
                    published = _whole(article.published) or _whole(kept)
                    conn.execute(
                        update(articles)
                        .where(articles.c.id == article.id)
                        .values(
                            published=published,
                            updated=max(_whole(article.updated) or now, published),
                            date_missing=article.published is None,
                            content_hash=content_hash,
                            withdrawn=None,
                            **_content_columns(article),
                            **file_cols,
                        )
                    )
                    outcomes.append(Change.UPDATED)
            if inserts:
                conn.execute(insert(articles), inserts)
            if any(o is not Change.UNCHANGED for o in outcomes):
                mark_content_changed(conn)
        return outcomes

    def mint_missing_feed_ids(self, mint: Callable[[str], str]) -> int:
        """Give every article without a feed id one (a store migrated from version 2 or older:
        minted from today's base_url, which is what its feeds said until now)."""
        with self.engine.begin() as conn:
            missing = conn.execute(select(articles.c.id).where(articles.c.feed_id.is_(None))).scalars().all()
            for article_id in missing:
                conn.execute(
                    update(articles).where(articles.c.id == article_id).values(feed_id=mint(article_id))
                )
        return len(missing)

    @staticmethod
    def _free_slug(conn: Connection, article: Article, taken: set[str], free: set[str]) -> str:
        """A slug no other article has: the title's, else with -2, -3 ... appended.
        ``taken``: given earlier in this batch; ``free``: known to be unused."""
        base = _base_slug(article)
        if base in free and base not in taken:
            return base
        slug, n = base, 1
        while slug in taken or conn.execute(select(articles.c.id).where(articles.c.slug == slug)).first():
            n += 1
            slug = f"{base}-{n}"
        return slug

    def withdraw(self, ids: Iterable[str], now: datetime) -> list[str]:
        """Withdraw these articles (their source no longer has them) from feeds and
        pages; digests already sent keep them. Returns the ids that were live."""
        done = []
        with self.engine.begin() as conn:
            for article_id in ids:
                hit = conn.execute(
                    update(articles)
                    .where(articles.c.id == article_id, articles.c.withdrawn.is_(None))
                    .values(withdrawn=now)
                )
                if hit.rowcount:
                    done.append(article_id)
            if done:
                mark_content_changed(conn)
        return done

    def published(self, now: datetime, limit: int | None = None) -> list[StoredArticle]:
        """Articles readers may see (not embargoed, not withdrawn), newest first."""
        q = (
            select(articles)
            .where(articles.c.published <= now, articles.c.withdrawn.is_(None))
            .order_by(articles.c.published.desc(), articles.c.id)
        )
        if limit is not None:
            q = q.limit(limit)
        with self.engine.connect() as conn:
            decode = _Decoder()
            return [_stored(r, decode) for r in conn.execute(q)]

    def next_release(self, now: datetime) -> datetime | None:
        """When the next embargoed article (published after ``now``, not withdrawn)
        comes out; None: there is none."""
        q = select(func.min(articles.c.published)).where(
            articles.c.published > now, articles.c.withdrawn.is_(None)
        )
        with self.engine.connect() as conn:
            return conn.execute(q).scalar()

    def not_yet_in_digest(self, now: datetime, newsletter: str = "digest") -> list[StoredArticle]:
        """Published articles that no earlier issue of ``newsletter`` carried (a
        skipped issue carried nothing), newest first."""
        q = (
            select(articles)
            .where(articles.c.published <= now, articles.c.withdrawn.is_(None), ~_carried(newsletter))
            .order_by(articles.c.published.desc(), articles.c.id)
        )
        with self.engine.connect() as conn:
            return [_stored(r) for r in conn.execute(q)]

    def corrected_since_digest(self, now: datetime, newsletter: str = "digest") -> list[StoredArticle]:
        """Articles an earlier issue of ``newsletter`` showed that have changed since (a
        correction), most recently updated first; never sent again as new, only marked "Updated"."""
        q = (
            select(articles)
            .where(
                articles.c.published <= now,
                articles.c.withdrawn.is_(None),
                _carried(newsletter, shown=True),
                ~_carried(newsletter, this_version=True),
            )
            .order_by(articles.c.updated.desc(), articles.c.id)
        )
        with self.engine.connect() as conn:
            return [_stored(r) for r in conn.execute(q)]

    def by_ids(self, ids: Iterable[str]) -> list[StoredArticle]:
        """These articles (those still stored), newest first."""
        wanted = list(ids)
        if not wanted:
            return []
        q = (
            select(articles)
            .where(articles.c.id.in_(wanted))
            .order_by(articles.c.published.desc(), articles.c.id)
        )
        with self.engine.connect() as conn:
            return [_stored(r) for r in conn.execute(q)]

    def counts(self, now: datetime) -> dict[str, int]:
        with self.engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(articles)).scalar_one()
            live = conn.execute(
                select(func.count()).where(articles.c.published <= now, articles.c.withdrawn.is_(None))
            ).scalar_one()
            digests_n = conn.execute(select(func.count()).select_from(digests)).scalar_one()
        return {"articles": total, "published": live, "digests": digests_n}

    def category_lists(self) -> list[list[str]]:
        """Each distinct list of categories that articles readers may see carry, the
        newest article's first (for the names of sections: ``categories.names``)."""
        newest = func.max(articles.c.published)
        q = (
            select(articles.c.categories)
            .where(articles.c.withdrawn.is_(None), articles.c.categories != "[]")
            .group_by(articles.c.categories)
            .order_by(newest.desc())
        )
        with self.engine.connect() as conn:
            return [json.loads(raw) for raw in conn.execute(q).scalars()]

    def per_source(self) -> dict[str, tuple[int, datetime | None]]:
        """For each source: articles seen (withdrawn ones included) and when the newest
        of them was first collected, so a source that went quiet stands out."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(articles.c.source, func.count(), func.max(articles.c.first_seen)).group_by(
                    articles.c.source
                )
            ).all()
        return {r[0]: (r[1], r[2]) for r in rows}


def _carried(newsletter: str, *, shown: bool = False, this_version: bool = False) -> Any:
    """An issue of ``newsletter`` (not a skipped one) carried the article (showed it;
    carried this very version of it)."""
    da = digest_articles.c
    found = exists().where(
        da.article_id == articles.c.id,
        da.digest_id == digests.c.id,
        digests.c.newsletter == newsletter,
        digests.c.status != "skipped",
    )
    if shown:
        found = found.where(da.shown)
    if this_version:
        found = found.where(da.content_hash == articles.c.content_hash)
    return found


def _whole(when: datetime | None) -> datetime | None:
    return when.replace(microsecond=0) if when is not None else None


def _base_slug(article: Article) -> str:
    return slugify(article.title) or "article-" + hashlib.sha1(article.id.encode()).hexdigest()[:10]


def _content_columns(article: Article) -> dict[str, object]:
    return {
        "title": article.title,
        "url": article.url,
        "authors": json.dumps([[a.name, a.email] for a in article.authors], ensure_ascii=False),
        "summary": article.summary,
        "body": article.body,
        "categories": json.dumps(list(article.categories), ensure_ascii=False),
        "image": article.image,
        "credits": json.dumps(list(article.credits), ensure_ascii=False),
    }


class _Decoder:
    """The JSON columns of many rows, each distinct value decoded once: across a whole
    archive the same bylines, categories and (empty) credits come back again and again."""

    def __init__(self) -> None:
        self._authors: dict[str, tuple[Author, ...]] = {}
        self._lists: dict[str, tuple[str, ...]] = {"[]": ()}

    def authors(self, raw: str) -> tuple[Author, ...]:
        found = self._authors.get(raw)
        if found is None:
            found = self._authors[raw] = tuple(Author(name, email) for name, email in json.loads(raw))
        return found

    def strings(self, raw: str) -> tuple[str, ...]:
        found = self._lists.get(raw)
        if found is None:
            found = self._lists[raw] = tuple(json.loads(raw))
        return found


def _stored(r: Row, decode: _Decoder | None = None) -> StoredArticle:
    decode = decode or _Decoder()
    article = Article(
        id=r.id,
        source=r.source,
        title=r.title,
        body=r.body,
        published=None if r.date_missing else r.published,
        updated=r.updated,
        authors=decode.authors(r.authors),
        summary=r.summary,
        categories=decode.strings(r.categories),
        image=r.image,
        credits=decode.strings(r.credits),
        url=r.url,
    )
    return StoredArticle(
        article=article,
        slug=r.slug,
        published=r.published,
        updated=r.updated,
        first_seen=r.first_seen,
        withdrawn=r.withdrawn is not None,
        content_hash=r.content_hash,
        feed_id=r.feed_id,
    )
