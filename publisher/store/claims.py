"""Claims: how senders share an issue's queued deliveries and still send each once.

A sender never just reads the queue: it *claims* batches of it. ``Claim.take(size)``
points up to ``size`` queued deliveries (of one rendition of an issue) at the sender's
``claims`` row in one transaction, and returns those readers with their audience read
by the one rule (``store.subscriptions.in_audience``) in that transaction; a reader who
left before the claim is recorded ``skipped`` right there. PostgreSQL: the candidates
are locked ``FOR UPDATE SKIP LOCKED``, so senders claiming at once take disjoint rows
without waiting for each other; SQLite: the claim runs under ``BEGIN IMMEDIATE`` (the
one writer), which makes it just as atomic across processes.

A claim lasts ``ttl`` seconds by the *database's* clock (``store.clock``) unless
renewed. Every commit of outcomes (``Claim.commit``) first renews it, in its own
transaction, then changes only the deliveries still pointing at it: its id is the
fencing token. A sender whose renewal fails has lost its claim (it expired and another
sender may have taken its rows): what it records changes only the rows still its own,
and it must stop before its next message. Between renewals the sender keeps a local
*monotonic* deadline (``Claim.deadline``): a process that was paused past it (SIGSTOP,
a VM frozen) sends nothing more until a renewal succeeds, which it will not once
another sender took over.

At each commit the rest of the claim's queued readers are checked against the audience
again (one query): the readers who left meanwhile come back in ``Committed.left`` and
are skipped from then on.

Whose rows a new claim may take: unclaimed ones, and those of a claim that expired or
whose holder is certainly gone (``store.liveness``: an open-file-description lock on a
byte of a file beside the SQLite database, a session advisory lock on PostgreSQL; the
kernel or the server drops either when the holder dies). Taking over a claim deletes its row,
so its holder's next renewal fails. ``Claim.release`` gives back the rows a sender did
not finish (temporary failures past their retries, a paused provider, a halt, a stop)
and deletes its row.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update

from publisher.models import Outcome, Subscriber
from publisher.store.claiming import SKIPPED, OneTrip, Statements
from publisher.store.clock import db_time
from publisher.store.liveness import for_claims as presence
from publisher.store.rows import Compiled, ids_text
from publisher.store.schema import UTCDateTime, claims, deliveries

__all__ = ["SKIPPED", "Batch", "Claim", "Committed"]

log = logging.getLogger(__name__)

USABLE = 0.75  # of a claim's ttl after a renewal was asked for: the local deadline to send by


@dataclass(frozen=True)
class Batch:
    """What ``Claim.take`` claimed: the readers to send to, in subscriber order, and how
    many claimed deliveries it recorded ``skipped`` (their reader left before)."""

    readers: list[Subscriber] = field(default_factory=list)
    skipped: int = 0
    waiting: bool = False  # nothing claimed, but an expired claim could not be taken yet: ask again


@dataclass(frozen=True)
class Committed:
    """What ``Claim.commit`` did: ``held``: the claim was renewed (False: it is lost,
    only rows still pointing at it were changed); ``bounced``: addresses that became
    bounced; ``left``: claimed readers still queued who are no longer in the audience."""

    held: bool
    bounced: int = 0
    left: tuple[int, ...] = ()


class Claim:
    """One sender's claim on the queued deliveries of an issue (of one rendition, or of
    every one: ``rendition`` None), for the whole of its sending: ``take`` claims more
    batches under the same fencing token, ``commit`` records outcomes, ``release`` (or
    leaving the ``with`` block) gives back what is left. It keeps one database connection
    of its own, and is used by one thread."""

    def __init__(
        self,
        engine: Engine,
        digest_id: int,
        newsletter: str,
        ttl: float,
        rendition: tuple[int | None] | None = None,
    ) -> None:
        self.engine, self.digest_id, self.newsletter, self.ttl = engine, digest_id, newsletter, ttl
        self.rendition = rendition
        self.dialect = engine.dialect.name
        self.id: int | None = None  # the fencing token, once the first batch is claimed
        self._after = 0  # the highest subscriber id claimed so far: the next search starts past it
        self.lost = False
        self.deadline = 0.0  # time.monotonic(): send nothing after it until a renewal succeeds
        self.worker = f"{socket.gethostname()} pid {os.getpid()}"  # for status lines only
        self._conn = engine.connect()
        self._raw: Any = self._conn.connection.dbapi_connection
        if self.dialect == "postgresql":
            # A holder frozen inside a transaction (SIGSTOP) would keep its rows and its
            # claim's row locked for ever: the server ends such a session after a ttl
            # (rolling it back, dropping its presence), so another sender can take over.
            self._conn.exec_driver_sql(f"SET idle_in_transaction_session_timeout = {max(1, int(ttl * 1000))}")
            self._conn.commit()
        self._presence = presence(engine)
        self._statements: Statements | None = None
        self._cur: Any = None  # the driver cursor commits run on
        self._bound: dict[Compiled, Callable[..., Any]] = {}  # _own's
        self._trip: OneTrip | None = None  # PostgreSQL: a commit in one round trip

    # -- claiming -------------------------------------------------------------------

    def take(self, size: int) -> Batch:
        """Claim up to ``size`` more queued deliveries (renewing the claim). An empty
        batch: nothing is left to claim (unless ``waiting``), or the claim was lost
        (``lost``: it expired and another sender may have its rows, or its connection
        was ended)."""
        if self.lost:
            return Batch()
        asked = time.monotonic()
        conn, c = self._conn, claims.c
        q = self._queries().fresh()
        new = self.id is None
        try:
            self._begin()
            cur = self._cursor()
            if new:
                self.id = conn.execute(
                    insert(claims)
                    .values(
                        digest_id=self.digest_id, worker=self.worker, expires=db_time(self.dialect, self.ttl)
                    )
                    .returning(c.id)
                ).scalar_one()
                self._presence.hold(conn, self.id)
            else:
                cur.execute(q.renew.sql, q.renew.args(mine=self.id))
                if cur.rowcount != 1:
                    conn.rollback()
                    self.lost = True
                    return Batch()
            waiting = self._take_over(conn, cur, q)
            rows = self._claim(cur, q, size)
            readers = [Subscriber(*r[:5]) for r in rows if r[5]]
            gone = [r[0] for r in rows if not r[5]]
            if gone:  # left before the claim: recorded at once, never handed out
                cur.execute(q.skip.sql, q.skip.args(ids=ids_text(self.dialect, gone)))
            conn.commit()
        except BaseException as exc:
            if new and self.id is not None:  # its row was rolled back: so is its presence
                self._presence.drop(self.id)
                self.id = None
            if self._ended(exc):
                return Batch()
            conn.rollback()
            raise
        self.deadline = asked + self.ttl * USABLE
        return Batch(readers, len(gone), waiting and not rows)

    def _claim(self, cur: Any, q: Statements, size: int) -> list[tuple[Any, ...]]:
        """Claim up to ``size`` queued, unclaimed deliveries, in subscriber order, from
        past the last one this claim took (the queue's front is claimed or sent: an
        index keeps the old entries of those rows until a vacuum, which a search from
        the start would walk every time); then from the start up to there when too few
        are left past it (another sender gave some back, or some were taken over).
        Returns their readers (id, public_id, email, name, status, in the audience)."""
        found: list[tuple[Any, ...]] = []
        for claim in q.claim[: 2 if self._after else 1]:
            cur.execute(claim.sql, claim.args(mine=self.id, after=self._after, n=size - len(found)))
            rows = cur.fetchall()
            if q.readers is not None and rows:  # SQLite: the ids claimed, then their readers
                ids = ids_text(self.dialect, [r[0] for r in rows])
                cur.execute(q.readers.sql, q.readers.args(ids=ids))
                rows = cur.fetchall()
            found = rows + found  # the second search's are before the first's
            if len(found) >= size:
                break
        if found:
            self._after = max(r[0] for r in found)
        return found

    def _take_over(self, conn: Any, cur: Any, q: Statements) -> bool:
        """Delete the issue's other claims that expired (by the database's clock) or whose
        holder is certainly gone, and free their queued rows: in this transaction. True:
        an expired claim could not be taken yet (its row is locked: its holder froze inside
        a transaction, which the server ends after a ttl, or another sender is taking it)."""
        cur.execute(q.others.sql, q.others.args(mine=self.id))
        others = cur.fetchall()
        if not others:
            return False
        c, d = claims.c, deliveries.c
        now = db_time(self.dialect)
        taken, stuck = [], False
        for other_id, worker, expired in others:
            if not (expired or self._presence.gone(conn, other_id)):
                continue
            # Its row locked first, never waited for (two senders taking claims over at
            # once would wait for each other); an expired one judged again under the lock:
            # it may have been renewed meanwhile.
            found = select(c.id).where(c.id == other_id)
            if expired:
                found = found.where(c.expires < now)
            if conn.execute(found.with_for_update(skip_locked=True)).first() is None:
                # locked (its holder froze inside a transaction, which the server ends
                # after a ttl, or another sender takes it over), or renewed, or gone
                stuck = stuck or conn.execute(found).first() is not None
                continue
            conn.execute(delete(claims).where(c.id == other_id))
            why = "expired" if expired else "no longer running"
            log.warning("taking over the deliveries claimed by %s (its claim %s)", worker, why)
            taken.append(other_id)
        if taken:
            conn.execute(
                update(deliveries)
                .where(d.digest_id == self.digest_id, d.status == "queued", d.claim_id.in_(taken))
                .values(claim_id=None)
            )
        return stuck

    # -- committing outcomes ----------------------------------------------------------

    def commit(
        self, outcomes: Sequence[Outcome], now: datetime, bounce_limit: int, ahead: int = 0
    ) -> Committed:
        """Renew the claim and record ``outcomes`` in one transaction (none: renew only;
        ``store.outcomes`` says what they do to the addresses; a delivery changes only while
        its row is still the claim's), then re-check the claimed readers still queued
        against the audience: the first ``ahead`` of them in subscriber order (the order
        they are handed out; 0: every one). One driver connection and statements compiled
        once: tens of microseconds."""
        if self.id is None or self._ended():
            return Committed(held=not self.lost)
        q = self._queries().fresh()
        asked = time.monotonic()
        when = UTCDateTime().process_bind_param(now, self.engine.dialect)
        raw = self._raw
        try:
            cur = self._cursor()
            if self.dialect == "postgresql" and q.writer.alike(outcomes):
                if self._trip is None:
                    self._trip = OneTrip(cur, self.id, q)
                sids = [o.subscriber_id for o in outcomes]
                held, left = self._trip.commit(raw, cur, q, sids, when, ahead or 2**31 - 1)
                bounced = 0
            else:
                held, bounced, left = self._commit(cur, q, outcomes, when, bounce_limit, ahead)
        except BaseException as exc:
            if self._ended(exc):
                return Committed(held=False)
            raw.rollback()
            raise
        if held:
            self.deadline = asked + self.ttl * USABLE
        else:
            self.lost = True
        return Committed(held, bounced, left)

    def _commit(
        self, cur: Any, q: Statements, outcomes: Sequence[Outcome], when: str | None, limit: int, ahead: int
    ) -> tuple[bool, int, tuple[int, ...]]:
        """``commit`` statement by statement (psycopg's pipeline mode, one round trip,
        took more CPU than the round trips it saved: ~440 µs against ~150 µs)."""
        left: tuple[int, ...] = ()
        if self.dialect == "sqlite":
            cur.execute("BEGIN IMMEDIATE")
        cur.execute(q.renew.sql, self._own(q.renew)())
        held = cur.rowcount == 1
        bounced = q.writer.write(cur, self.id, outcomes, when, limit)
        if held:  # who left the audience since: skipped from now on
            cur.execute(q.recheck.sql, self._own(q.recheck)(ahead=ahead or 2**31 - 1))
            left = tuple(r[0] for r in cur.fetchall())
        self._raw.commit()
        return held, bounced, left

    # -- giving back ------------------------------------------------------------------

    def release(self) -> None:
        """Give back the claimed deliveries still queued (they stay queued, unclaimed) and
        delete the claim; close its connection. A failure here is logged: the claim then
        simply expires."""
        try:
            if self.id is not None:
                d = deliveries.c
                self._begin()
                # its own row first, as every transaction of a claim: a sender taking
                # claims over skips a claim whose row is locked (its holder froze mid-way)
                self._conn.execute(delete(claims).where(claims.c.id == self.id))
                self._conn.execute(
                    update(deliveries)
                    .where(d.digest_id == self.digest_id, d.claim_id == self.id, d.status == "queued")
                    .values(claim_id=None)
                )
                self._conn.commit()
        except Exception as exc:
            if not self._ended(exc):
                log.warning(
                    "could not give back the claimed deliveries (they are free once it expires): %s", exc
                )
                self._conn.rollback()
        finally:
            if self._cur is not None:
                _close(self._cur)
            if not self._ended():
                self._presence.close(self._conn, self.id)
                if self.dialect == "postgresql":
                    for drop in self._trip.dropped() if self._trip is not None else []:
                        self._conn.exec_driver_sql(drop)
                    self._conn.exec_driver_sql("RESET idle_in_transaction_session_timeout")
                    self._conn.commit()
            self._conn.close()

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()

    # -- helpers ----------------------------------------------------------------------

    def _ended(self, exc: BaseException | None = None) -> bool:
        """Whether the claim's connection was ended under it (the server ended a session
        frozen inside a transaction, or the connection broke): the claim is lost, its
        transaction rolled back by the server."""
        if exc is not None and not isinstance(exc, Exception):
            return False
        ended = bool(getattr(self._raw, "closed", False)) or self._conn.invalidated
        self.lost = self.lost or ended
        if ended and exc is not None:
            log.warning(
                "the claim's connection to the store was ended (%s): it is lost",
                " ".join(str(exc).split())[:200],
            )
        return ended

    def _begin(self) -> None:
        """Start a write transaction, which ``self._conn.commit()`` ends (it may run
        statements on the driver cursor too): SQLite takes its one write lock now (BEGIN
        IMMEDIATE), not at the first write after a read (a claim must be atomic across
        processes)."""
        if self.dialect == "sqlite":
            self._conn.exec_driver_sql("BEGIN IMMEDIATE")
        elif not self._conn.in_transaction():
            self._conn.begin()

    def _cursor(self) -> Any:
        """The driver cursor this claim's statements run on."""
        if self._cur is None:
            self._cur = self._raw.cursor()
        return self._cur

    def _own(self, compiled: Compiled) -> Callable[..., Any]:
        """``compiled.args`` with this claim's id given once (``Compiled.bound``)."""
        args = self._bound.get(compiled)
        if args is None:
            if len(self._bound) > 16:  # statements built again (Statements.fresh)
                self._bound.clear()
            args = self._bound[compiled] = compiled.bound(mine=self.id)
        return args

    def _queries(self) -> Statements:
        if self._statements is None:
            self._statements = Statements(
                self.engine, self.digest_id, self.newsletter, self.ttl, self.rendition
            )
        return self._statements


def _close(cur: Any) -> None:
    try:
        cur.close()
    except Exception:  # its connection is gone already
        pass
