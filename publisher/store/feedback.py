"""Feedback events and the suppression list (the rules' constants are in ``publisher.models``).

``record`` applies a group of events in one transaction. Its first statement is a
write (the event row), so a SQLite writer holds the write lock before it reads
anything and two intakes never read a state the other is about to change; on
PostgreSQL the unique event key makes a concurrent copy of the same event wait for
the first and then count as a duplicate.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Connection,
    Engine,
    Integer,
    String,
    and_,
    bindparam,
    delete,
    exists,
    func,
    literal,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from publisher.addresses import mailbox_key
from publisher.errors import InvalidAddress
from publisher.models import COUNTS, SUPPRESSES, Event, Recorded, Suppression, event_key
from publisher.store.rows import upsert
from publisher.store.schema import UTCDateTime, feedback_events, subscribers, suppressions

if TYPE_CHECKING:
    from publisher.config import BouncesConfig

# A stronger reason replaces a weaker one; never the other way round.
_RANK = {"soft_bounce": 0, "manual": 1, "hard_bounce": 2, "complaint": 3}
# What ending every subscription means for the subscriber's status, per reason.
_ENDED = {"complaint": "unsubscribed", "hard_bounce": "bounced"}


def entries_for(email: str) -> tuple[str, str]:
    """The suppression entries that cover ``email``: itself and its whole domain."""
    return email, "@" + email.rpartition("@")[2]


class Feedback:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(self, events: Sequence[Event], rules: BouncesConfig, now: datetime) -> Recorded:
        done = Recorded()
        if not events:
            return done
        with self.engine.begin() as conn:
            for ev in events:
                address = _canonical(ev.address)
                inserted = conn.execute(
                    _insert_ignoring_duplicates(conn, feedback_events)
                    .values(
                        key=event_key(ev.key),
                        kind=ev.kind,
                        address=address,
                        issue_id=ev.issue_id,
                        subscriber_id=ev.subscriber_id,
                        status=ev.status[:16],
                        diagnostic=ev.diagnostic,
                        source=ev.source[:64],
                        at=ev.at,
                        recorded=now,
                    )
                    .returning(feedback_events.c.id)
                ).first()
                if inserted is None:
                    done.duplicates += 1
                    continue
                done.new += 1
                subscriber_id, address = self._who(conn, ev.subscriber_id, address)
                if subscriber_id is None and ev.subscriber_id is not None:
                    done.unknown += 1
                if not address:
                    continue
                if address != _canonical(ev.address) or subscriber_id != ev.subscriber_id:
                    conn.execute(
                        update(feedback_events)
                        .where(feedback_events.c.key == event_key(ev.key))
                        .values(address=address, subscriber_id=subscriber_id)
                    )
                detail = " ".join(p for p in (ev.status, ev.diagnostic) if p)[:500]
                if ev.kind in SUPPRESSES:
                    if _suppress(conn, address, ev.kind, detail, now, None):
                        done.suppressed.append(address)
                    _end_subscriptions(conn, address, ev.kind, now)
                elif ev.kind in COUNTS:
                    since = ev.at - timedelta(days=rules.soft_window_days)
                    soft = conn.execute(
                        select(func.count()).where(
                            feedback_events.c.address == address,
                            feedback_events.c.kind.in_(COUNTS),
                            feedback_events.c.at > since,
                            feedback_events.c.at <= ev.at,
                        )
                    ).scalar_one()
                    if soft >= rules.soft_limit:
                        days = rules.soft_suspend_days
                        until = now + timedelta(days=days) if days else None
                        why = f"{soft} soft bounces in {rules.soft_window_days} days; last: {detail}"
                        if _suppress(conn, address, "soft_bounce", why[:500], now, until):
                            done.suspended.append(address)
        return done

    def _who(self, conn: Connection, subscriber_id: int | None, address: str) -> tuple[int | None, str]:
        """(subscriber id, address) of an event: a named subscriber's own address (the
        one we sent to, whatever the report says), else the subscriber with ``address``."""
        if subscriber_id is not None:
            email = conn.execute(
                select(subscribers.c.email).where(subscribers.c.id == subscriber_id)
            ).scalar()
            if email is not None:
                return subscriber_id, email
        if not address:
            return None, ""
        found = conn.execute(select(subscribers.c.id).where(subscribers.c.email == address)).scalar()
        return found, address

    # -- the suppression list ---------------------------------------------------------

    def suppress(
        self, entry: str, reason: str, detail: str, now: datetime, expires: datetime | None = None
    ) -> bool:
        """Add ``entry`` (an address or ``@domain``); True when it was added or made
        stronger. A manual suppression of an address does not end its subscriptions
        (removing the entry makes it receive again)."""
        with self.engine.begin() as conn:
            return _suppress(conn, entry, reason, detail, now, expires)

    def suppress_many(self, entries: Sequence[tuple[str, str, str, datetime, datetime | None]]) -> int:
        """``suppress`` each (entry, reason, detail, created, expires) in one transaction
        (a batch of an import); return how many were added or made stronger. Entries not
        listed yet go in with one statement, the others one by one."""
        with self.engine.begin() as conn:
            wanted = {e[0] for e in entries}
            listed = set(
                conn.execute(select(suppressions.c.entry).where(suppressions.c.entry.in_(wanted))).scalars()
            )
            new: dict[str, dict[str, Any]] = {}
            again = []
            for entry, reason, detail, created, expires in entries:
                if entry in listed or entry in new:
                    again.append((entry, reason, detail, created, expires))
                else:
                    new[entry] = {
                        "entry": entry,
                        "reason": reason,
                        "detail": detail,
                        "created": created,
                        "expires": expires,
                    }
            if new:
                conn.execute(_insert_ignoring_duplicates(conn, suppressions), list(new.values()))
            return len(new) + sum(_suppress(conn, *entry) for entry in again)

    def unsuppress(self, entry: str) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(delete(suppressions).where(suppressions.c.entry == entry)).rowcount > 0

    def suppressions(self, now: datetime | None = None, batch: int = 1000) -> Iterator[Suppression]:
        """Every entry (with ``now``: only those in force then), addresses and domains by
        name, read ``batch`` at a time: a long list is never all in memory."""
        last = ""
        while True:
            q = select(suppressions).where(suppressions.c.entry > last).order_by(suppressions.c.entry)
            if now is not None:
                q = q.where(_in_force(now))
            with self.engine.connect() as conn:
                group = [_suppression(r) for r in conn.execute(q.limit(batch))]
            yield from group
            if len(group) < batch:
                return
            last = group[-1].entry

    def suppressed(self, email: str, now: datetime) -> Suppression | None:
        """The entry in force that keeps ``email`` from being sent anything, if any."""
        q = select(suppressions).where(suppressions.c.entry.in_(entries_for(email)), _in_force(now))
        with self.engine.connect() as conn:
            row = conn.execute(q.order_by(suppressions.c.entry.desc())).first()
        return None if row is None else _suppression(row)

    def events(self, since: datetime | None = None) -> list[dict[str, Any]]:
        """The recorded events (oldest first), as plain rows: for reports."""
        q = select(feedback_events).order_by(feedback_events.c.at, feedback_events.c.id)
        if since is not None:
            q = q.where(feedback_events.c.at >= since)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]


class _AtSign(FunctionElement[int]):
    """Where "@" is in an address (1-based): SQLite's instr, PostgreSQL's strpos."""

    name = "at_sign"
    inherit_cache = True
    type = Integer()


@compiles(_AtSign)
def _at_sign(element: _AtSign, compiler: Any, **kw: Any) -> str:
    return f"instr({compiler.process(element.clauses, **kw)}, '@')"


@compiles(_AtSign, "postgresql")
def _at_sign_postgresql(element: _AtSign, compiler: Any, **kw: Any) -> str:
    return f"strpos({compiler.process(element.clauses, **kw)}, '@')"


def not_suppressed(email: Any, now: datetime | None = None) -> Any:
    """A WHERE clause: no suppression in force (at ``now``, default: the time the
    statement is built) covers ``email`` (a column), neither the address nor its
    ``@domain``. Part of every newsletter's audience (``store.subscriptions``), so a
    suppressed address is never queued or sent anything, whichever newsletter. Both
    halves are lookups of the entry's key."""
    in_force = _in_force(now or datetime.now(UTC))
    entry = suppressions.c.entry
    domain = literal("@").concat(func.substr(email, _AtSign(email) + 1))
    return and_(~exists().where(entry == email, in_force), ~exists().where(entry == domain, in_force))


def suppression_of(dialect: str) -> Any:
    """INSERT a ``hard_bounce`` suppression of the subscriber ``:sid`` (``:detail``,
    ``:now``) unless the address is listed already: the sending loop's statement for an
    address the SMTP session just bounced, so the list shows every address never mailed."""
    insert = upsert(dialect, suppressions)
    source = select(
        subscribers.c.email,
        literal("hard_bounce", String),
        bindparam("detail", type_=String),
        bindparam("now", type_=String),
    ).where(subscribers.c.id == bindparam("sid"))
    return insert.from_select(["entry", "reason", "detail", "created"], source).on_conflict_do_nothing()


def _canonical(address: str) -> str:
    if not address:
        return ""
    try:
        return mailbox_key(address)
    except InvalidAddress:
        return address.strip().lower()[:320]


def _in_force(now: datetime) -> Any:
    """Entries without an end, or ending after ``now``. The time is bound as the text the
    column stores (a sortable UTC stamp), so statements run on a driver cursor (the
    sending loop's, see ledger) compare it right too."""
    stamp = UTCDateTime().process_bind_param(now, None)
    return or_(suppressions.c.expires.is_(None), type_coerce(suppressions.c.expires, String) > stamp)


def _insert_ignoring_duplicates(conn: Connection, table: Any) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING; with RETURNING, no row when it was there
    (rowcount is not a reliable answer for this statement on every driver)."""
    return upsert(conn.dialect.name, table).on_conflict_do_nothing()


def _suppress(
    conn: Connection, entry: str, reason: str, detail: str, now: datetime, expires: datetime | None
) -> bool:
    values = {"reason": reason, "detail": detail, "created": now, "expires": expires}
    insert = _insert_ignoring_duplicates(conn, suppressions).values(entry=entry, **values)
    if conn.execute(insert.returning(suppressions.c.entry)).first() is not None:
        return True
    row = conn.execute(select(suppressions).where(suppressions.c.entry == entry)).first()
    if row is None:  # removed meanwhile: nothing to strengthen
        return False
    lapsed = row.expires is not None and row.expires <= now
    if not lapsed and _RANK.get(reason, 1) <= _RANK.get(row.reason, 1):
        return False
    conn.execute(update(suppressions).where(suppressions.c.entry == entry).values(**values))
    return True


def _end_subscriptions(conn: Connection, address: str, reason: str, now: datetime) -> None:
    """A complaint or a hard bounce ends everything the address receives: every
    subscription, and its own status says why."""
    from publisher.store.subscriptions import LIVE, end_every  # it builds on this module

    whose = select(subscribers.c.id).where(subscribers.c.email == address).scalar_subquery()
    end_every(conn, whose, now)
    conn.execute(
        update(subscribers)
        .where(subscribers.c.email == address, subscribers.c.status.in_(LIVE))
        .values(status=_ENDED[reason], changed=now)
    )


def _suppression(r: Any) -> Suppression:
    return Suppression(r.entry, r.reason, r.detail, r.created, r.expires)
