"""Subscribers: the addresses, and whether each may be mailed (what each gets: subscriptions)."""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Row, delete, func, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from publisher.models import Subscriber
from publisher.store.rows import insert_new
from publisher.store.schema import subscribe_requests, subscribers
from publisher.store.subscriptions import on_address_status

STATUSES = ("pending", "active", "unsubscribed", "bounced")


class Subscribers:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def get(self, email: str) -> Subscriber | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(subscribers).where(subscribers.c.email == email)).first()
        return None if row is None else _subscriber(row)

    def by_public_id(self, public_id: str) -> Subscriber | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(subscribers).where(subscribers.c.public_id == public_id)).first()
        return None if row is None else _subscriber(row)

    def add(self, email: str, name: str, status: str, now: datetime) -> Subscriber:
        with self.engine.begin() as conn:
            conn.execute(
                insert(subscribers).values(
                    public_id=secrets.token_hex(12),
                    email=email,
                    name=name,
                    status=status,
                    created=now,
                    changed=now,
                )
            )
        found = self.get(email)
        assert found is not None
        return found

    def get_or_add(self, email: str, name: str, status: str, now: datetime) -> tuple[Subscriber, bool]:
        """The subscriber with this address, added with ``status`` if absent; True when
        added. A concurrent add of the same address (unique email) is not an error."""
        found = self.get(email)
        if found is not None:
            return found, False
        try:
            return self.add(email, name, status, now), True
        except IntegrityError:
            found = self.get(email)
            assert found is not None
            return found, False

    def statuses(self, emails: Iterable[str]) -> dict[str, str]:
        """The status of each of ``emails`` that is known (one query per 500)."""
        return self._by_email(emails, subscribers.c.status)

    def ids(self, emails: Iterable[str]) -> dict[str, int]:
        """The id of each of ``emails`` that is known (one query per 500)."""
        return self._by_email(emails, subscribers.c.id)

    def _by_email(self, emails: Iterable[str], column: Any) -> dict[str, Any]:
        wanted, found = list(emails), {}
        with self.engine.connect() as conn:
            for i in range(0, len(wanted), 500):
                q = select(subscribers.c.email, column).where(subscribers.c.email.in_(wanted[i : i + 500]))
                found.update((r[0], r[1]) for r in conn.execute(q))
        return found

    def add_many(self, people: Iterable[tuple[str, str]], status: str, now: datetime) -> int:
        """Insert many new, already normalised (email, name) pairs in one transaction
        (a large import); return how many were inserted."""
        rows = [
            {
                "public_id": secrets.token_hex(12),
                "email": email,
                "name": name,
                "status": status,
                "created": now,
                "changed": now,
            }
            for email, name in people
        ]
        return insert_new(self.engine, subscribers, rows)

    def set_status(self, email: str, status: str, now: datetime, name: str | None = None) -> None:
        assert status in STATUSES
        values: dict[str, object] = {"status": status, "changed": now}
        if name is not None:
            values["name"] = name
        if status == "active":
            values["hard_failures"] = 0
        with self.engine.begin() as conn:
            conn.execute(update(subscribers).where(subscribers.c.email == email).values(**values))
            whose = select(subscribers.c.id).where(subscribers.c.email == email).scalar_subquery()
            on_address_status(conn, whose, status, now)

    def change_status(self, public_id: str, status: str, now: datetime, *, unless: str | None = None) -> bool:
        """Set the status of the subscriber ``public_id`` in one statement; with
        ``unless``, leave a subscriber already in that status untouched (so repeating
        an unsubscribe keeps its first time). True when a row changed."""
        assert status in STATUSES
        values: dict[str, object] = {"status": status, "changed": now}
        if status == "active":
            values["hard_failures"] = 0
        q = update(subscribers).where(subscribers.c.public_id == public_id)
        if unless is not None:
            q = q.where(subscribers.c.status != unless)
        with self.engine.begin() as conn:
            if conn.execute(q.values(**values)).rowcount == 0:
                return False
            whose = select(subscribers.c.id).where(subscribers.c.public_id == public_id).scalar_subquery()
            on_address_status(conn, whose, status, now)
            return True

    def allow_request(self, target: str, now: datetime, window: timedelta, limit: int) -> bool:
        """Record one confirmation request for ``target`` (a keyed hash of an address)
        unless ``limit`` were already recorded within ``window``; True when recorded.

        Concurrent requests must not all count the same rows and all pass: the
        transaction is SERIALIZABLE (SQLite: its write lock; a server database
        aborts one of two requests that would each miss the other's row), and a
        request aborted for that is tried again."""
        for attempt in range(1, 51):
            try:
                return self._allow_request(target, now, window, limit)
            except DBAPIError as exc:
                if attempt == 50 or not _serialization_failure(exc):
                    raise
                time.sleep(random.uniform(0, 0.01 * attempt))
        raise AssertionError("unreachable")

    def _allow_request(self, target: str, now: datetime, window: timedelta, limit: int) -> bool:
        with self.engine.connect() as conn:
            conn.execution_options(isolation_level="SERIALIZABLE")
            with conn.begin() as tx:
                conn.execute(delete(subscribe_requests).where(subscribe_requests.c.at < now - window))
                conn.execute(insert(subscribe_requests).values(target=target, at=now))
                n = conn.execute(
                    select(func.count()).where(
                        subscribe_requests.c.target == target, subscribe_requests.c.at >= now - window
                    )
                ).scalar_one()
                if n > limit:
                    tx.rollback()
                    return False
        return True

    def all(self, status: str | None = None) -> list[Subscriber]:
        q = select(subscribers).order_by(subscribers.c.email)
        if status is not None:
            q = q.where(subscribers.c.status == status)
        with self.engine.connect() as conn:
            return [_subscriber(r) for r in conn.execute(q)]

    def batches(self, size: int = 1000, status: str | None = None) -> Iterator[list[Subscriber]]:
        """Every subscriber (with ``status``), by address, ``size`` at a time: a long list
        is never all in memory."""
        last = ""
        while True:
            q = (
                select(subscribers)
                .where(subscribers.c.email > last)
                .order_by(subscribers.c.email)
                .limit(size)
            )
            if status is not None:
                q = q.where(subscribers.c.status == status)
            with self.engine.connect() as conn:
                group = [_subscriber(r) for r in conn.execute(q)]
            if group:
                yield group
            if len(group) < size:
                return
            last = group[-1].email

    def counts(self) -> dict[str, int]:
        q = select(subscribers.c.status, func.count()).group_by(subscribers.c.status)
        with self.engine.connect() as conn:
            found = dict((r[0], r[1]) for r in conn.execute(q))
        return {status: found.get(status, 0) for status in STATUSES}


def _serialization_failure(exc: DBAPIError) -> bool:
    """SQLSTATE 40001 (serialization failure) or 40P01 (deadlock): the transaction
    was aborted only because of a concurrent one, and may simply be run again."""
    orig = exc.orig
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return code in ("40001", "40P01")


def _subscriber(r: Row) -> Subscriber:
    return Subscriber(
        id=r.id,
        public_id=r.public_id,
        email=r.email,
        name=r.name,
        status=r.status,
        created=r.created,
        changed=r.changed,
    )
