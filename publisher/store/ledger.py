"""The delivery ledger: digests, the articles each one carried, and one row per
(digest, subscriber) written before sending and marked only after the transport
accepted the message. A run that dies leaves queued rows the next run resumes."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, bindparam, func, insert, select, update

from publisher.models import DigestItem, DigestRecord, Outcome, Subscriber
from publisher.store.feedback import not_suppressed
from publisher.store.schema import UTCDateTime, deliveries, digest_articles, digests, subscribers


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
        """Record a digest, its articles and a queued delivery for every active
        subscriber, all in one transaction: either all of it exists or none."""
        with self.engine.begin() as conn:
            digest_id = conn.execute(
                insert(digests).values(
                    key=key, created=now, subject=subject, status="sending", html=html, text=text
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
            if recipients:
                ids = (
                    conn.execute(
                        select(subscribers.c.id).where(
                            subscribers.c.status == "active", not_suppressed(subscribers.c.email)
                        )
                    )
                    .scalars()
                    .all()
                )
                if ids:
                    conn.execute(
                        insert(deliveries),
                        [
                            {"digest_id": digest_id, "subscriber_id": s, "status": "queued", "changed": now}
                            for s in ids
                        ],
                    )
        return DigestRecord(digest_id, key, now, subject, "sending", html, text)

    def next_key(self, day: str) -> str:
        """The archive name of the next digest of ``day``: YYYY-MM-DD, then -2, -3 ..."""
        with self.engine.connect() as conn:
            return _next_key(conn, day)

    def unfinished(self) -> list[DigestRecord]:
        """Digests whose sending has not finished (oldest first): resume these first."""
        q = select(digests).where(digests.c.status == "sending").order_by(digests.c.id)
        with self.engine.connect() as conn:
            return [
                DigestRecord(r.id, r.key, r.created, r.subject, r.status, r.html, r.text)
                for r in conn.execute(q)
            ]

    def queued(self, digest_id: int, batch: int = 500) -> Iterator[Subscriber]:
        """The subscribers still owed this digest, in batches (the list may be long)."""
        last = 0
        while True:
            sub = subscribers.c
            q = (
                select(sub.id, sub.public_id, sub.email, sub.name, sub.status)  # what a message needs
                .join(deliveries, deliveries.c.subscriber_id == subscribers.c.id)
                .where(deliveries.c.digest_id == digest_id, deliveries.c.status == "queued")
                .where(subscribers.c.id > last)
                .order_by(subscribers.c.id)
                .limit(batch)
            )
            with self.engine.connect() as conn:
                rows = conn.execute(q).all()
            if not rows:
                return
            for r in rows:
                yield Subscriber(r.id, r.public_id, r.email, r.name, r.status)
            last = rows[-1].id

    @contextmanager
    def status_checker(self) -> Iterator[Callable[[int], bool]]:
        """Whether a subscriber is still active, for one sending thread: asked right
        before every message (an unsubscribe committed meanwhile wins), so cheap: its own driver connection for the whole run, the statement compiled
        once, each read in its own short transaction (so it sees every commit)."""
        status = _Compiled(  # a suppression (a complaint meanwhile) makes it not active
            self.engine,
            select(subscribers.c.status).where(
                subscribers.c.id == bindparam("sid"), not_suppressed(subscribers.c.email)
            ),
        )
        raw = self.engine.raw_connection()
        try:
            cur = raw.cursor()

            def active(subscriber_id: int) -> bool:
                try:
                    cur.execute(status.sql, status.args(sid=subscriber_id))
                    row = cur.fetchone()
                finally:
                    raw.rollback()
                return row is not None and row[0] == "active"

            yield active
        finally:
            raw.close()

    def queued_count(self, digest_id: int) -> int:
        q = select(func.count()).where(deliveries.c.digest_id == digest_id, deliveries.c.status == "queued")
        with self.engine.connect() as conn:
            return conn.execute(q).scalar_one()

    @contextmanager
    def recorder(self) -> Iterator[Callable[[int, Sequence[Outcome], datetime, int], int]]:
        """The sending loop's writer: ``record(digest_id, outcomes, now, bounce_limit)``
        commits a group of outcomes in one transaction and returns how many addresses
        became ``bounced`` (a 5.1.1 at once, other hard failures once ``bounce_limit``
        of them have accumulated; a delivered message clears them). One driver
        connection and statements compiled once: a commit costs tens of microseconds."""
        d, sub = deliveries.c, subscribers.c
        by_delivery = _Compiled(
            self.engine,
            update(deliveries)
            .where(d.digest_id == bindparam("did"), d.subscriber_id == bindparam("sid"))
            .values(
                status=bindparam("new_status"),
                attempts=d.attempts + 1,
                last_error=bindparam("error"),
                changed=bindparam("now"),
                reply_code=bindparam("code"),
                reply_status=bindparam("reply"),
            ),
        )
        clear = _Compiled(
            self.engine,
            update(subscribers)
            .where(sub.id == bindparam("sid"), sub.hard_failures > 0)
            .values(hard_failures=0),
        )
        count = _Compiled(
            self.engine,
            update(subscribers).where(sub.id == bindparam("sid")).values(hard_failures=sub.hard_failures + 1),
        )
        suppress = _Compiled(
            self.engine,
            update(subscribers)
            .where(
                sub.id == bindparam("sid"), sub.status == "active", sub.hard_failures >= bindparam("limit")
            )
            .values(status="bounced", changed=bindparam("now")),
        )
        stamp = UTCDateTime().process_bind_param
        raw = self.engine.raw_connection()

        def record(digest_id: int, outcomes: Sequence[Outcome], now: datetime, bounce_limit: int) -> int:
            if not outcomes:
                return 0
            when = stamp(now, self.engine.dialect)
            cur = raw.cursor()
            bounced = 0
            try:
                cur.executemany(
                    by_delivery.sql,
                    [
                        by_delivery.args(
                            did=digest_id,
                            sid=o.subscriber_id,
                            new_status=o.status,
                            error=o.error,
                            now=when,
                            code=o.reply_code,
                            reply=o.reply_status or None,
                        )
                        for o in outcomes
                    ],
                )
                delivered = [clear.args(sid=o.subscriber_id) for o in outcomes if o.status == "sent"]
                if delivered:
                    cur.executemany(clear.sql, delivered)
                for o in outcomes:
                    if o.status == "failed" and o.bounce:
                        cur.execute(count.sql, count.args(sid=o.subscriber_id))
                        limit = 1 if o.bounce == "now" else bounce_limit
                        cur.execute(suppress.sql, suppress.args(sid=o.subscriber_id, limit=limit, now=when))
                        bounced += max(cur.rowcount, 0)
                raw.commit()
            except BaseException:
                raw.rollback()
                raise
            finally:
                cur.close()
            return bounced

        try:
            yield record
        finally:
            raw.close()

    def finish(self, digest_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(digests).where(digests.c.id == digest_id).values(status="done"))

    def delivery_counts(self, digest_id: int | None = None) -> dict[str, int]:
        q = select(deliveries.c.status, func.count()).group_by(deliveries.c.status)
        if digest_id is not None:
            q = q.where(deliveries.c.digest_id == digest_id)
        with self.engine.connect() as conn:
            return dict((r[0], r[1]) for r in conn.execute(q))

    def all_digests(self) -> list[DigestRecord]:
        q = select(digests).order_by(digests.c.id.desc())
        with self.engine.connect() as conn:
            return [
                DigestRecord(r.id, r.key, r.created, r.subject, r.status, r.html, r.text)
                for r in conn.execute(q)
            ]

    def last_issue(self, newsletter: str, status: str | None = None) -> Any:
        """The newsletter's newest issue (with ``status``): its key, status and created
        time only (None: it has none)."""
        d = digests.c
        q = select(d.key, d.status, d.created).where(d.newsletter == newsletter)
        if status is not None:
            q = q.where(d.status == status)
        with self.engine.connect() as conn:
            return conn.execute(q.order_by(d.id.desc()).limit(1)).first()


def _next_key(conn: object, day: str) -> str:
    taken = set(conn.execute(select(digests.c.key).where(digests.c.key.like(f"{day}%"))).scalars())  # type: ignore[attr-defined]
    key, n = day, 1
    while key in taken:
        n += 1
        key = f"{day}-{n}"
    return key


class _Compiled:
    """A Core statement compiled once for the engine's driver, run on a driver cursor
    (the sending loop's hot path: no per-call compile or result machinery)."""

    def __init__(self, engine: Engine, statement: Any) -> None:
        compiled = statement.compile(dialect=engine.dialect)
        self.sql = str(compiled)
        self.defaults = dict(compiled.params)
        self.order = list(compiled.positiontup) if compiled.positional else None

    def args(self, **params: Any) -> Any:
        values = {**self.defaults, **params}
        return tuple(values[k] for k in self.order) if self.order is not None else values
