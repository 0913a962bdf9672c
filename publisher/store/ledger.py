"""The delivery ledger: digests, the articles each one carried, and one row per
(digest, subscriber) written before sending and marked only after the transport
accepted the message. A run that dies leaves queued rows the next run resumes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, bindparam, func, insert, select, update

from publisher.models import Outcome, Subscriber
from publisher.store.schema import deliveries, digest_articles, digests, subscribers


@dataclass(frozen=True)
class DigestRecord:
    id: int
    key: str
    created: datetime
    subject: str
    status: str
    html: str
    text: str


@dataclass(frozen=True)
class DigestItem:
    article_id: str
    content_hash: str
    shown: bool


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
                    conn.execute(select(subscribers.c.id).where(subscribers.c.status == "active"))
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
            q = (
                select(subscribers)
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
                yield Subscriber(r.id, r.public_id, r.email, r.name, r.status, r.created)
            last = rows[-1].id

    def still_active(self, subscriber_id: int) -> bool:
        """Checked right before sending: an unsubscribe committed meanwhile wins."""
        with self.engine.connect() as conn:
            status = conn.execute(
                select(subscribers.c.status).where(subscribers.c.id == subscriber_id)
            ).scalar()
        return status == "active"

    def queued_count(self, digest_id: int) -> int:
        q = select(func.count()).where(deliveries.c.digest_id == digest_id, deliveries.c.status == "queued")
        with self.engine.connect() as conn:
            return conn.execute(q).scalar_one()

    def mark(
        self, digest_id: int, subscriber_id: int, status: str, now: datetime, error: str | None = None
    ) -> None:
        self.record(digest_id, [Outcome(subscriber_id, status, error)], now, bounce_limit=1)

    def record(self, digest_id: int, outcomes: Sequence[Outcome], now: datetime, bounce_limit: int) -> int:
        """Record a group of delivery outcomes in one transaction; return how many
        addresses became ``bounced`` (a 5.1.1 at once, other hard failures once
        ``bounce_limit`` of them have accumulated; a delivered message clears them)."""
        if not outcomes:
            return 0
        row = deliveries.c
        by_delivery = (
            update(deliveries)
            .where(row.digest_id == digest_id, row.subscriber_id == bindparam("sid"))
            .values(
                status=bindparam("new_status"),
                attempts=row.attempts + 1,
                last_error=bindparam("error"),
                changed=now,
            )
        )
        sub = subscribers.c
        bounced = 0
        with self.engine.begin() as conn:
            conn.execute(
                by_delivery,
                [{"sid": o.subscriber_id, "new_status": o.status, "error": o.error} for o in outcomes],
            )
            delivered = [o.subscriber_id for o in outcomes if o.status == "sent"]
            if delivered:
                conn.execute(
                    update(subscribers)
                    .where(sub.id.in_(delivered), sub.hard_failures > 0)
                    .values(hard_failures=0)
                )
            for o in outcomes:
                if o.status != "failed" or not o.bounce:
                    continue
                conn.execute(
                    update(subscribers)
                    .where(sub.id == o.subscriber_id)
                    .values(hard_failures=sub.hard_failures + 1)
                )
                limit = 1 if o.bounce == "now" else bounce_limit
                done = conn.execute(
                    update(subscribers)
                    .where(sub.id == o.subscriber_id, sub.status == "active", sub.hard_failures >= limit)
                    .values(status="bounced", changed=now)
                )
                bounced += done.rowcount
        return bounced

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


def _next_key(conn: object, day: str) -> str:
    taken = set(conn.execute(select(digests.c.key).where(digests.c.key.like(f"{day}%"))).scalars())  # type: ignore[attr-defined]
    key, n = day, 1
    while key in taken:
        n += 1
        key = f"{day}-{n}"
    return key
