"""The delivery ledger: issues (the ``digests`` table) of each newsletter, the
articles each one carried, its renditions (one per distinct choice of sections
among its readers), and one row per (issue, subscriber) pointing to their rendition,
written before sending and marked only after the transport accepted the message. A
run that dies leaves queued rows the next run resumes. Senders claim the queued rows in
batches (``publisher.store.claims``), so several can share an issue.

Issue states: ``held`` (waiting for an editor: no deliveries yet), ``sending``,
``done``, ``skipped`` (discarded: its articles count as never carried)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Integer, Select, String, func, insert, literal, select, update

from publisher.models import DIGEST, DigestItem, DigestRecord
from publisher.store.claims import Claim
from publisher.store.clock import db_time
from publisher.store.meta import mark_content_changed
from publisher.store.rows import Compiled as _Compiled  # noqa: F401  (tests and bench/suppression.py use it)
from publisher.store.schema import (
    UTCDateTime,
    claims,
    deliveries,
    digest_articles,
    digests,
    renditions,
    subscribers,
    subscriptions,
)
from publisher.store.subscriptions import in_audience


@dataclass(frozen=True)
class Part:
    """A rendition of an issue (``id`` None: the issue itself, for every reader
    without a narrower choice)."""

    id: int | None
    sections: str  # JSON list of section slugs; "[]" for the issue itself
    subject: str
    html: str
    text: str


# Which readers of a newsletter get which rendition: (their stored ``sections``
# values, None for every reader; an index into the renditions given, None for the
# whole issue).
Groups = Sequence[tuple[Sequence[str] | None, int | None]]

# Called in a transaction that changes issues, last before it commits: raises (and so
# rolls the transaction back) unless the writer still holds the site lock
# (``publisher.locks.Lock.fence``): a node that lost it cannot make or change an issue.
Fence = Callable[[Connection], None]


class Ledger:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create_digest(
        self,
        key: str,
        subject: str,
        html: str,
        text: str,
        items: Sequence[DigestItem],
        now: datetime,
        *,
        recipients: bool = True,
    ) -> DigestRecord:
        """Record an issue of the single newsletter ``digest`` queued for every active
        reader of it (``create_issue``)."""
        record = DigestRecord(0, key, now, subject, "sending", html, text, DIGEST)
        return self.create_issue(record, items, [], [(None, None)] if recipients else [])

    def create_issue(
        self,
        record: DigestRecord,
        items: Sequence[DigestItem],
        parts: Sequence[Part],
        groups: Groups,
        *,
        held: bool = False,
        fence: Fence | None = None,
    ) -> DigestRecord:
        """Record an issue, its articles, its renditions and (unless ``held``) a queued
        delivery for every active reader of its newsletter as ``groups`` says, all in
        one transaction: either all of it exists or none. An issue not held is in the
        archive: the same transaction moves the content version (``meta``), and
        ``fence`` is called last in it."""
        status = "held" if held else "sending"
        with self.engine.begin() as conn:
            digest_id = conn.execute(
                insert(digests).values(
                    key=record.key,
                    newsletter=record.newsletter,
                    created=record.created,
                    subject=record.subject,
                    status=status,
                    html=record.html,
                    text=record.text,
                )
            ).inserted_primary_key[0]
            if items:
                conn.execute(
                    insert(digest_articles),
                    [
                        {
                            "digest_id": digest_id,
                            "article_id": i.article_id,
                            "content_hash": i.content_hash,
                            "shown": i.shown,
                        }
                        for i in items
                    ],
                )
            ids = _add_parts(conn, digest_id, parts)
            if not held:
                _queue(conn, digest_id, record.newsletter, groups, ids, record.created)
                mark_content_changed(conn)  # the archive shows it: every web node rebuilds
            if fence is not None:
                fence(conn)
        if not held:
            _analyze(self.engine)
        return DigestRecord(
            digest_id,
            record.key,
            record.created,
            record.subject,
            status,
            record.html,
            record.text,
            record.newsletter,
        )

    def release(
        self, digest_id: int, parts: Sequence[Part], groups: Groups, now: datetime, fence: Fence | None = None
    ) -> bool:
        """Queue a held issue (its renditions added; the content version moved: it is in
        the archive now), ``fence`` last in the transaction; False when it is no longer held."""
        with self.engine.begin() as conn:
            row = conn.execute(
                update(digests)
                .where(digests.c.id == digest_id, digests.c.status == "held")
                .values(status="sending")
                .returning(digests.c.newsletter)
            ).first()
            if row is None:
                return False
            _queue(conn, digest_id, row.newsletter, groups, _add_parts(conn, digest_id, parts), now)
            mark_content_changed(conn)
            if fence is not None:
                fence(conn)
        _analyze(self.engine)
        return True

    def discard(self, digest_id: int, fence: Fence | None = None) -> bool:
        """A held issue skipped: nothing is sent, its articles are free again (``fence``
        last in the transaction)."""
        with self.engine.begin() as conn:
            done = conn.execute(
                update(digests)
                .where(digests.c.id == digest_id, digests.c.status == "held")
                .values(status="skipped")
            )
            if fence is not None:
                fence(conn)
            return done.rowcount == 1

    def choices(self, newsletter: str) -> list[str]:
        """The distinct ``sections`` values of the newsletter's audience."""
        q = _audience(newsletter).with_only_columns(subscriptions.c.sections).distinct()
        with self.engine.connect() as conn:
            return list(conn.execute(q).scalars())

    def next_key(self, newsletter: str, day: str) -> str:
        """The archive name of the newsletter's next issue of ``day``: YYYY-MM-DD, then -2, -3 ..."""
        with self.engine.connect() as conn:
            return _next_key(conn, newsletter, day)

    def held(self, newsletter: str) -> DigestRecord | None:
        """The newsletter's issue waiting for approval, if any."""
        q = select(digests).where(digests.c.newsletter == newsletter, digests.c.status == "held")
        with self.engine.connect() as conn:
            row = conn.execute(q.order_by(digests.c.id)).first()
        return _record(row) if row is not None else None

    def last_created(self, newsletter: str) -> datetime | None:
        """When the newsletter's latest issue (not a skipped one) was made."""
        q = select(func.max(digests.c.created)).where(
            digests.c.newsletter == newsletter, digests.c.status != "skipped"
        )
        with self.engine.connect() as conn:
            return conn.execute(q).scalar()

    def issue(self, newsletter: str, key: str) -> DigestRecord | None:
        q = select(digests).where(digests.c.newsletter == newsletter, digests.c.key == key)
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        return _record(row) if row is not None else None

    def items(self, digest_id: int) -> tuple[list[str], list[str], set[str]]:
        """An issue's articles: (shown, counted only, corrections among the shown):
        a correction is an article an earlier issue of the newsletter carried."""
        da = digest_articles.c
        earlier = digest_articles.alias("earlier")
        with self.engine.connect() as conn:
            newsletter = conn.execute(
                select(digests.c.newsletter).where(digests.c.id == digest_id)
            ).scalar_one()
            rows = conn.execute(select(da.article_id, da.shown).where(da.digest_id == digest_id)).all()
            corrected = set(
                conn.execute(
                    select(earlier.c.article_id)
                    .join(digests, digests.c.id == earlier.c.digest_id)
                    .where(
                        digests.c.newsletter == newsletter,
                        digests.c.id < digest_id,
                        digests.c.status != "skipped",
                        earlier.c.article_id.in_(select(da.article_id).where(da.digest_id == digest_id)),
                    )
                ).scalars()
            )
        return [r.article_id for r in rows if r.shown], [r.article_id for r in rows if not r.shown], corrected

    def unfinished(self) -> list[DigestRecord]:
        """Issues whose sending has not finished (oldest first): resume these first."""
        q = select(digests).where(digests.c.status == "sending").order_by(digests.c.id)
        with self.engine.connect() as conn:
            return [_record(r) for r in conn.execute(q)]

    def parts(self, digest_id: int) -> list[Part]:
        """The renditions of an issue that still have queued deliveries (the whole
        issue first), each to be built once."""
        d = deliveries.c
        with self.engine.connect() as conn:
            ids = set(
                conn.execute(
                    select(d.rendition_id).distinct().where(d.digest_id == digest_id, d.status == "queued")
                ).scalars()
            )
            out = []
            if None in ids:
                r = conn.execute(select(digests).where(digests.c.id == digest_id)).one()
                out.append(Part(None, "[]", r.subject, r.html, r.text))
            rows = conn.execute(
                select(renditions)
                .where(renditions.c.id.in_([i for i in ids if i is not None]))
                .order_by(renditions.c.id)
            )
            out += [Part(r.id, r.sections, r.subject, r.html, r.text) for r in rows]
        return out

    def part(self, digest_id: int, rendition_id: int | None, newsletter: str) -> PartLedger:
        """What sending one rendition needs of the ledger (``sender.LedgerView``)."""
        return PartLedger(self, digest_id, rendition_id, newsletter)

    def claim(self, digest_id: int, ttl: float) -> Claim:
        """A sender's claim on the issue's queued deliveries of the whole issue (those of
        no narrower rendition: every one ``create_digest`` queues; ``part(...).claim`` for
        a rendition), ``publisher.store.claims``: use it in a ``with`` block, which gives
        back what is left."""
        with self.engine.connect() as conn:
            newsletter = conn.execute(
                select(digests.c.newsletter).where(digests.c.id == digest_id)
            ).scalar_one()
        return Claim(self.engine, digest_id, newsletter, ttl, (None,))

    def queued_count(self, digest_id: int, rendition: tuple[int | None] | None = None) -> int:
        """The issue's queued deliveries (of one rendition, given ``(rendition_id,)``)."""
        d = deliveries.c
        q = select(func.count()).where(d.digest_id == digest_id, d.status == "queued")
        if rendition is not None:
            q = q.where(_of_rendition(rendition[0]))
        with self.engine.connect() as conn:
            return conn.execute(q).scalar_one()

    def queue_state(self, digest_id: int, rendition: tuple[int | None] | None = None) -> tuple[int, int]:
        """(queued, held): the issue's queued deliveries (of one rendition) and how many of
        them a live claim holds (another sender is sending them), read in one statement,
        so one snapshot: two reads would count a delivery that another sender sent between
        them as neither held nor sent."""
        d = deliveries.c
        live = select(claims.c.id).where(claims.c.expires > db_time(self.engine.dialect.name))
        held = func.count().filter(d.claim_id.in_(live))
        q = select(func.count(), held).where(d.digest_id == digest_id, d.status == "queued")
        if rendition is not None:
            q = q.where(_of_rendition(rendition[0]))
        with self.engine.connect() as conn:
            queued, held_now = conn.execute(q).one()
        return queued, held_now

    def finish(self, digest_id: int) -> None:
        """Mark an issue done once no delivery of it is queued any more."""
        queued = (
            select(deliveries.c.subscriber_id)
            .where(deliveries.c.digest_id == digest_id, deliveries.c.status == "queued")
            .exists()
        )
        with self.engine.begin() as conn:
            conn.execute(
                update(digests)
                .where(digests.c.id == digest_id, digests.c.status == "sending", ~queued)
                .values(status="done")
            )

    def delivery_counts(self, digest_id: int | None = None) -> dict[str, int]:
        q = select(deliveries.c.status, func.count()).group_by(deliveries.c.status)
        if digest_id is not None:
            q = q.where(deliveries.c.digest_id == digest_id)
        with self.engine.connect() as conn:
            return dict((r[0], r[1]) for r in conn.execute(q))

    def all_digests(self, newsletter: str | None = None) -> list[DigestRecord]:
        """Every issue (of one newsletter), newest first."""
        q = select(digests).order_by(digests.c.id.desc())
        if newsletter is not None:
            q = q.where(digests.c.newsletter == newsletter)
        with self.engine.connect() as conn:
            return [_record(r) for r in conn.execute(q)]

    def last_issue(self, newsletter: str, status: str | None = None) -> Any:
        """The newsletter's newest issue (with ``status``): its key, status and created
        time only (None: it has none)."""
        d = digests.c
        q = select(d.key, d.status, d.created).where(d.newsletter == newsletter)
        if status is not None:
            q = q.where(d.status == status)
        with self.engine.connect() as conn:
            return conn.execute(q.order_by(d.id.desc()).limit(1)).first()


class PartLedger:
    """The ledger as the sender sees it while sending one rendition of an issue: its
    queued deliveries, claimed in batches (``publisher.store.claims``); the issue is done
    once none of its renditions has queued rows."""

    def __init__(self, ledger: Ledger, digest_id: int, rendition_id: int | None, newsletter: str) -> None:
        self.ledger, self.digest_id, self.newsletter = ledger, digest_id, newsletter
        self.rendition = (rendition_id,)

    def claim(self, digest_id: int, ttl: float) -> Claim:
        return Claim(self.ledger.engine, digest_id, self.newsletter, ttl, self.rendition)

    def queued_count(self, digest_id: int) -> int:
        return self.ledger.queued_count(digest_id, self.rendition)

    def queue_state(self, digest_id: int) -> tuple[int, int]:
        return self.ledger.queue_state(digest_id, self.rendition)

    def finish(self, digest_id: int) -> None:
        self.ledger.finish(digest_id)


def _analyze(engine: Engine) -> None:
    """Let PostgreSQL's planner know the deliveries just queued: a table it believes
    small or empty is read whole by every claim and every commit of outcomes (a sequential
    scan of the issue's rows) instead of by its indexes, until autovacuum gets to it."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE deliveries")


def _record(r: Any) -> DigestRecord:
    return DigestRecord(r.id, r.key, r.created, r.subject, r.status, r.html, r.text, r.newsletter)


def _of_rendition(rendition_id: int | None) -> Any:
    column = deliveries.c.rendition_id
    return column.is_(None) if rendition_id is None else column == rendition_id


def _add_parts(conn: Connection, digest_id: int, parts: Sequence[Part]) -> list[int]:
    return [
        conn.execute(
            insert(renditions).values(
                digest_id=digest_id, sections=p.sections, subject=p.subject, html=p.html, text=p.text
            )
        ).inserted_primary_key[0]
        for p in parts
    ]


def _queue(
    conn: Connection, digest_id: int, newsletter: str, groups: Groups, ids: Sequence[int], now: datetime
) -> None:
    """A queued delivery for every active reader of ``newsletter`` in ``groups``,
    pointing to their rendition (one INSERT ... SELECT per group: no reader list in memory)."""
    columns = ["digest_id", "subscriber_id", "status", "attempts", "changed", "rendition_id"]
    for raws, index in groups:
        q = _audience(newsletter).with_only_columns(
            literal(digest_id, Integer),
            subscriptions.c.subscriber_id,
            literal("queued", String),
            literal(0, Integer),
            literal(now, UTCDateTime),
            literal(ids[index] if index is not None else None, Integer),
        )
        if raws is not None:
            q = q.where(subscriptions.c.sections.in_(list(raws)))
        conn.execute(insert(deliveries).from_select(columns, q))


def _audience(newsletter: str) -> Select[Any]:
    """The newsletter's readers (``publisher.store.subscriptions``' rule), as a statement."""
    return (
        select(subscriptions.c.subscriber_id)
        .select_from(subscriptions.join(subscribers, subscribers.c.id == subscriptions.c.subscriber_id))
        .where(in_audience(newsletter))
    )


def _next_key(conn: Connection, newsletter: str, day: str) -> str:
    taken = set(
        conn.execute(
            select(digests.c.key).where(digests.c.newsletter == newsletter, digests.c.key.like(f"{day}%"))
        ).scalars()
    )
    key, n = day, 1
    while key in taken:
        n += 1
        key = f"{day}-{n}"
    return key
