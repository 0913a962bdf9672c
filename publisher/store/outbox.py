"""The confirmation-mail outbox: every mail POST /subscribe promised, committed before
the promise was given, and what became of it.

A row is ``queued`` (due at ``due``), ``sending`` while one sender hands it to the
transport (a row found ``sending`` later was interrupted: it may or may not have gone
out), then ``sent`` or ``failed``. Only the holder of the confirmation sender's lease
changes rows, so no mail is taken by two senders.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import Engine, func, insert, or_, select, update

from publisher.models import OutboxMail, Subscriber
from publisher.store.schema import mail_outbox, subscribers


class Outbox:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, subscriber_id: int, kind: str, now: datetime) -> int:
        with self.engine.begin() as conn:
            return conn.execute(
                insert(mail_outbox).values(
                    subscriber_id=subscriber_id,
                    kind=kind,
                    token=secrets.token_hex(8),
                    created=now,
                    due=now,
                    status="queued",
                    attempts=0,
                    changed=now,
                )
            ).inserted_primary_key[0]

    def due(self, now: datetime, limit: int = 50) -> list[OutboxMail]:
        """Mails to send now, oldest first: queued ones that are due, and any left
        ``sending`` by a sender that was stopped or killed."""
        m, s = mail_outbox.c, subscribers.c
        q = (
            select(
                m.id,
                m.kind,
                m.token,
                m.created,
                m.attempts,
                m.status,
                s.id.label("sid"),
                s.public_id,
                s.email,
                s.name,
                s.status.label("sub_status"),
                s.created.label("sc"),
                s.changed.label("sch"),
            )
            .join(subscribers, subscribers.c.id == m.subscriber_id)
            .where(or_(m.status == "sending", (m.status == "queued") & (m.due <= now)))
            .order_by(m.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        return [
            OutboxMail(
                r.id,
                r.kind,
                r.token,
                r.created,
                r.attempts,
                r.status == "sending",
                Subscriber(r.sid, r.public_id, r.email, r.name, r.sub_status, r.sc, r.sch),
            )
            for r in rows
        ]

    def next_due(self) -> datetime | None:
        q = select(func.min(mail_outbox.c.due)).where(mail_outbox.c.status == "queued")
        with self.engine.connect() as conn:
            return conn.execute(q).scalar()

    def sending(self, mail_id: int, now: datetime) -> None:
        self._set(mail_id, now, status="sending", attempts=mail_outbox.c.attempts + 1)

    def sent(self, mail_id: int, now: datetime) -> None:
        self._set(mail_id, now, status="sent", last_error=None)

    def retry(self, mail_id: int, now: datetime, due: datetime, error: str) -> None:
        self._set(mail_id, now, status="queued", due=due, last_error=error)

    def failed(self, mail_id: int, now: datetime, error: str) -> None:
        self._set(mail_id, now, status="failed", last_error=error)

    def counts(self) -> dict[str, int]:
        q = select(mail_outbox.c.status, func.count()).group_by(mail_outbox.c.status)
        with self.engine.connect() as conn:
            return {r[0]: r[1] for r in conn.execute(q)}

    def _set(self, mail_id: int, now: datetime, **values: object) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(mail_outbox).where(mail_outbox.c.id == mail_id).values(changed=now, **values))
