"""The statements of one claim (``store.claims``), compiled once for its driver
connection: a claim runs them for every batch it takes and every commit of outcomes,
so none is built, compiled or cached again per call, and their rows come back as
plain tuples.

Claiming a batch is one statement on PostgreSQL (the unclaimed rows are locked
``FOR UPDATE SKIP LOCKED``, pointed at the claim and their readers read with their
audience, in one round trip) and two on SQLite (in process: ``UPDATE ... RETURNING``
the rows claimed, then their readers). Ids travel as one parameter (``rows.in_ids``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, Integer, any_, bindparam, func, select, update

from publisher.store.clock import db_time
from publisher.store.outcomes import OutcomeWriter
from publisher.store.rows import Compiled, Prepared, ids_text, in_ids
from publisher.store.schema import QUEUED, claims, deliveries, subscribers, subscriptions
from publisher.store.subscriptions import in_audience

SKIPPED = "no longer subscribed"
FRESH = 1.0  # seconds: how old the statements reading the audience may get


class Statements:
    """One claim's statements on the queued deliveries of issue ``digest_id`` (of one
    rendition: ``rendition``, or of every one: None) for ``newsletter``'s audience.
    Each takes the claim's id as ``mine``."""

    def __init__(
        self, engine: Engine, digest_id: int, newsletter: str, ttl: float, rendition: tuple[int | None] | None
    ) -> None:
        self.dialect = dialect = engine.dialect.name
        self.digest_id, self.newsletter, self.rendition = digest_id, newsletter, rendition
        c, d = claims.c, deliveries.c
        self.renew = Compiled(
            engine,
            update(claims)
            .where(c.id == bindparam("mine"), c.expires > db_time(dialect))
            .values(expires=db_time(dialect, ttl)),
        )
        self.others = Compiled(
            engine,
            select(c.id, c.worker, (c.expires < db_time(dialect)).label("expired")).where(
                c.digest_id == digest_id, c.id != bindparam("mine")
            ),
        )
        self.engine, self.built = engine, -FRESH
        self.claim: tuple[Compiled, Compiled]
        self.readers: Compiled | None
        self.recheck: Compiled
        self.fresh()
        self.skip = Compiled(
            engine,
            update(deliveries)
            .where(in_ids(dialect, d.subscriber_id, within=(d.digest_id, digest_id)))
            .values(status="skipped", attempts=d.attempts + 1, last_error=SKIPPED, changed=db_time(dialect)),
        )
        self.writer = OutcomeWriter(engine, digest_id)

    def fresh(self) -> Statements:
        """These statements, those reading the audience built again when they are
        ``FRESH`` seconds old: the audience's suppression check binds the time it was
        built (``feedback.not_suppressed``), and a suppression that ends mid-send ends
        for this claim's readers within that."""
        if time.monotonic() - self.built < FRESH:
            return self
        engine, after = self.engine, bindparam("after", type_=Integer)
        d = deliveries.c
        self.claim = (
            self._claim(engine, d.subscriber_id > after),
            self._claim(engine, d.subscriber_id <= after),
        )
        self.readers = None if self.dialect == "postgresql" else Compiled(engine, self._readers(None))
        self.recheck = self._recheck(engine)
        self.built = time.monotonic()
        return self

    def _claim(self, engine: Engine, in_range: Any) -> Compiled:
        """Point up to ``:n`` queued, unclaimed deliveries in ``in_range`` (in subscriber
        order) at claim ``:mine``. PostgreSQL: returns their readers (``_readers``); SQLite:
        their subscriber ids (``readers`` reads them)."""
        d = deliveries.c
        found = (
            select(d.subscriber_id)
            .where(d.digest_id == self.digest_id, QUEUED, d.claim_id.is_(None), in_range, *self.of_part())
            .order_by(d.subscriber_id)
            .limit(bindparam("n", type_=Integer))
            .with_for_update(skip_locked=True)
        )
        if self.dialect == "postgresql":
            # ARRAY(subquery): the search runs once, as an init plan, whatever plan the
            # update gets (an IN could be rescanned)
            picked = d.subscriber_id == any_(func.array(found.scalar_subquery()))
        else:
            picked = d.subscriber_id.in_(found)
        claimed = (
            update(deliveries)
            .where(d.digest_id == self.digest_id, picked)
            .values(claim_id=bindparam("mine"))
            .returning(d.subscriber_id)
        )
        if self.dialect == "postgresql":
            return Compiled(engine, self._readers(claimed.cte("claimed")))
        return Compiled(engine, claimed)

    def _readers(self, claimed: Any) -> Any:
        """The readers claimed (``claimed``: a CTE of subscriber ids; None: the ids given
        as ``:ids``) in subscriber order, with whether each is in the audience."""
        reader = subscribers.alias("reader")
        s = reader.c
        q = select(
            s.id, s.public_id, s.email, s.name, s.status, reading(s.id, self.newsletter).label("reading")
        )
        if claimed is None:
            return q.where(in_ids(self.dialect, s.id)).order_by(s.id)
        return q.select_from(claimed.join(reader, s.id == claimed.c.subscriber_id)).order_by(s.id)

    def _recheck(self, engine: Engine) -> Compiled:
        """The first ``:ahead`` claimed readers still queued (in subscriber order) who
        are no longer in the audience."""
        d = deliveries.c
        rest = (
            select(d.subscriber_id)
            .where(d.digest_id == self.digest_id, QUEUED, *self.of_part(), d.claim_id == bindparam("mine"))
            .order_by(d.subscriber_id)
            .limit(bindparam("ahead", type_=Integer))
            .subquery("rest")
        )
        return Compiled(
            engine, select(rest.c.subscriber_id).where(~reading(rest.c.subscriber_id, self.newsletter))
        )

    def of_part(self) -> list[Any]:
        if self.rendition is None:
            return []
        column = deliveries.c.rendition_id
        rid = self.rendition[0]
        return [column.is_(None) if rid is None else column == rid]


class OneTrip:
    """PostgreSQL: a commit of claim ``mine`` whose outcomes are all alike (delivered,
    with nothing of their own but the reader: ``OutcomeWriter.alike``), or none, in one
    round trip and one transaction: its statements prepared on the claim's session once
    and run by EXECUTE in one simple query on the connection in autocommit mode, the
    renewal first (as in every transaction of a claim). Statement by statement took four
    more round trips, and ~150 µs of CPU where this takes ~50 µs."""

    def __init__(self, cur: Any, mine: int, q: Statements) -> None:
        many = q.writer.many
        self.renew, self.sent, self.clear, self.recheck = (
            Prepared(cur, f"claim{mine}_{what}", compiled, given, mine=mine)
            for what, compiled, given in (
                ("renew", q.renew, ()),
                ("sent", many[0], ("sids", "now")),
                ("clear", many[1], ("sids",)),
                ("recheck", q.recheck, ("ahead",)),
            )
        )
        cur.connection.commit()  # (psycopg began a transaction for them)
        self.renewal = self.renew.call()  # the same every time

    def commit(
        self, raw: Any, cur: Any, q: Statements, sids: Sequence[int], when: str | None, ahead: int
    ) -> tuple[bool, tuple[int, ...]]:
        """Renew the claim, record ``sids`` delivered at ``when``, re-check the first
        ``ahead`` claimed readers: (renewed, who left the audience)."""
        if self.recheck.compiled is not q.recheck:  # built again (Statements.fresh)
            self.recheck.renew(q.recheck)
        run = [self.renewal]
        if sids:
            ids, now = Prepared.text(ids_text("postgresql", sids)), Prepared.text(when or "")
            run += [self.sent.call(sids=ids, now=now), self.clear.call(sids=ids)]
        run.append(self.recheck.call(ahead=Prepared.number(ahead)))
        raw.autocommit = True  # the simple query's statements: one implicit transaction
        try:
            cur.execute("; ".join(run))
        finally:
            if not raw.closed:
                raw.autocommit = False
        held = cur.rowcount == 1
        for _ in run[1:]:
            cur.nextset()
        return held, tuple(r[0] for r in cur.fetchall()) if held else ()

    def dropped(self) -> list[str]:
        """The statements dropping its prepared statements from the session (before the
        connection goes back to the pool)."""
        return [f"DEALLOCATE {p.name}" for p in (self.renew, self.sent, self.clear, self.recheck)]


def reading(subscriber_id: Any, newsletter: str) -> Any:
    """Whether ``subscriber_id`` (a column of the enclosing query, which must not select
    from ``subscribers`` itself) is in the newsletter's audience: the one rule,
    ``store.subscriptions.in_audience``, with ``subscribers`` in its own FROM (its
    suppression check correlates to it). A scalar subquery, not EXISTS: PostgreSQL would
    turn an EXISTS into one pass over the whole audience (hashed, or joined), where this
    judges each claimed row on its own, by key lookups, whatever the table statistics."""
    first = (
        select(subscriptions.c.subscriber_id)
        .select_from(subscriptions.join(subscribers, subscribers.c.id == subscriptions.c.subscriber_id))
        .where(subscriptions.c.subscriber_id == subscriber_id, in_audience(newsletter))
        .limit(1)
        .scalar_subquery()
    )
    return first.is_not(None)
