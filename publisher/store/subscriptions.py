"""Subscriptions: which newsletters each subscriber gets, and which of their sections.

One row per (subscriber, newsletter key): ``pending`` until the address is confirmed by
the double opt-in mail, ``active``, or ``unsubscribed``; ``sections`` is the reader's
narrowing (section slugs; empty: everything the newsletter carries).

Two statuses meet here. The subscriber's own (``subscribers.status``) says whether the
address may be mailed at all (pending until confirmed, active, unsubscribed from
everything, bounced); a subscription says what the address gets. A newsletter's
audience is the active subscriptions of active subscribers. The rules that join them
live in ``Subscriptions`` (and nowhere else):

- confirming the address (its status becoming active) activates its pending
  subscriptions; active ones are untouched;
- unsubscribing the address from everything ends every subscription it has.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, select, update

from publisher.models import Subscriber
from publisher.store.feedback import not_suppressed
from publisher.store.rows import insert_new, upsert
from publisher.store.schema import subscribers, subscriptions

STATUSES = ("active", "pending", "unsubscribed")
LIVE = ("pending", "active")


@dataclass(frozen=True)
class Subscription:
    subscriber_id: int
    newsletter: str
    status: str  # pending | active | unsubscribed
    sections: tuple[str, ...]  # the reader's narrowing; () = all the newsletter carries
    created: datetime
    changed: datetime


class Subscriptions:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def of(self, subscriber_id: int) -> dict[str, Subscription]:
        """Every subscription of a subscriber, by newsletter key (ended ones too)."""
        q = select(subscriptions).where(subscriptions.c.subscriber_id == subscriber_id)
        with self.engine.connect() as conn:
            return {r.newsletter: _subscription(r) for r in conn.execute(q)}

    def request(
        self, subscriber_id: int, choices: Mapping[str, Sequence[str]], now: datetime, *, status: str
    ) -> list[str]:
        """Subscribe to each newsletter of ``choices`` (key -> sections) with ``status``
        (``pending``: awaiting the double opt-in; ``active``: consent given elsewhere, e.g.
        an operator's import). A subscription already active is untouched; a pending or
        ended one takes ``status`` and the new sections. Returns the keys that changed."""
        assert status in LIVE
        changed: list[str] = []
        with self.engine.begin() as conn:
            current = _current(conn, subscriber_id)
            for key, sections in choices.items():
                found = current.get(key)
                if found is not None and found.status == "active":
                    continue
                if _put(conn, subscriber_id, key, status, sections, now, unless_active=True):
                    changed.append(key)
        return changed

    def add_many(self, wanted: Mapping[int, Mapping[str, Sequence[str]]], status: str, now: datetime) -> int:
        """New subscriptions for new subscribers (a large import), in one transaction:
        subscriber id -> {newsletter key: sections}; returns how many were added."""
        assert status in LIVE
        rows = [
            {
                "subscriber_id": sid,
                "newsletter": key,
                "status": status,
                "sections": json.dumps(list(sections), ensure_ascii=False),
                "created": now,
                "changed": now,
            }
            for sid, choices in wanted.items()
            for key, sections in choices.items()
        ]
        return insert_new(self.engine, subscriptions, rows)

    def confirm(self, subscriber_id: int, now: datetime) -> None:
        """The address proved itself (the double opt-in link): it is active, and so are
        its pending subscriptions; active and ended ones are untouched."""
        with self.engine.begin() as conn:
            conn.execute(
                update(subscribers)
                .where(subscribers.c.id == subscriber_id, subscribers.c.status != "active")
                .values(status="active", changed=now, hard_failures=0)
            )
            on_address_status(conn, subscriber_id, "active", now)

    def set_preferences(
        self, subscriber_id: int, choices: Mapping[str, Sequence[str] | None], now: datetime
    ) -> list[str]:
        """Save a reader's choices from the preference centre: key -> sections makes that
        subscription active with those sections, key -> None ends it (no confirmation:
        the signed link proves the address). An address unsubscribed from everything that
        chooses a newsletter again is active again; a bounced one stays bounced. Returns
        the keys that changed."""
        changed: list[str] = []
        with self.engine.begin() as conn:
            current = _current(conn, subscriber_id)
            for key, sections in choices.items():
                found = current.get(key)
                if sections is None:
                    if found is not None and found.status != "unsubscribed":
                        _end(conn, subscriber_id, now, newsletter=key)
                        changed.append(key)
                    continue
                wanted = tuple(sections)
                if found is not None and found.status == "active" and found.sections == wanted:
                    continue
                _put(conn, subscriber_id, key, "active", wanted, now)
                changed.append(key)
            if any(choices.get(k) is not None for k in changed):
                conn.execute(
                    update(subscribers)
                    .where(
                        subscribers.c.id == subscriber_id,
                        subscribers.c.status.in_(("pending", "unsubscribed")),
                    )
                    .values(status="active", changed=now, hard_failures=0)
                )
        return changed

    def unsubscribe(self, subscriber_id: int, newsletter: str, now: datetime) -> bool:
        """End one subscription (idempotent: a second time keeps the first time); True
        when it was live."""
        with self.engine.begin() as conn:
            return _end(conn, subscriber_id, now, newsletter=newsletter) > 0

    def unsubscribe_all(self, subscriber_id: int, now: datetime) -> int:
        """End every subscription and unsubscribe the address itself (a reader's
        "unsubscribe from everything", a complaint); returns how many subscriptions ended."""
        with self.engine.begin() as conn:
            ended = _end(conn, subscriber_id, now)
            conn.execute(
                update(subscribers)
                .where(subscribers.c.id == subscriber_id, subscribers.c.status.in_(LIVE))
                .values(status="unsubscribed", changed=now)
            )
        return ended

    def members(self, newsletter: str, batch: int = 1000) -> Iterator[tuple[Subscriber, Subscription]]:
        """Everyone with a subscription to ``newsletter`` (ended ones too), by address,
        read ``batch`` at a time; the subscription's status is what the reader gets (an
        active one of an address that may not be mailed counts as that address's status)."""
        last = ""
        while True:
            # A page of addresses in order (the email index), each with its subscription
            # if any (the primary key): ordering the newsletter's whole audience by
            # address for every page would sort it all, again and again.
            page = (
                select(subscribers)
                .where(subscribers.c.email > last)
                .order_by(subscribers.c.email)
                .limit(batch)
                .subquery()
            )
            of = subscriptions.c
            q = (
                select(
                    page,
                    of.status.label("got"),
                    of.sections,
                    of.created.label("since"),
                    of.changed.label("moved"),
                )
                .outerjoin(subscriptions, and_(of.subscriber_id == page.c.id, of.newsletter == newsletter))
                .order_by(page.c.email)
            )
            with self.engine.connect() as conn:
                rows = conn.execute(q).all()
            for r in rows:
                if r.got is None:  # no subscription to this newsletter
                    continue
                person = Subscriber(r.id, r.public_id, r.email, r.name, r.status, r.created, r.changed)
                got = _effective(r.got, r.status)
                yield person, Subscription(r.id, newsletter, got, _sections(r.sections), r.since, r.moved)
            if len(rows) < batch:
                return
            last = rows[-1].email

    def counts(self, newsletters: Iterable[str] = ()) -> dict[str, dict[str, int]]:
        """Per newsletter key (each of ``newsletters`` at least, with zeros): how many
        subscriptions are ``active`` (its audience: the address is active too), ``pending``
        (awaiting confirmation) and ``unsubscribed`` (ended, or the address may not be
        mailed: unsubscribed or bounced)."""
        s, sub = subscriptions.c, subscribers.c
        q = (
            select(s.newsletter, s.status, sub.status.label("address"), func.count())
            .join(subscribers, sub.id == s.subscriber_id)
            .group_by(s.newsletter, s.status, sub.status)
        )
        found = {key: dict.fromkeys(STATUSES, 0) for key in newsletters}
        with self.engine.connect() as conn:
            for newsletter, status, address, n in conn.execute(q):
                counts = found.setdefault(newsletter, dict.fromkeys(STATUSES, 0))
                counts[_effective(status, address)] += n
        return found

    def keys_of(self, subscriber_ids: Iterable[int]) -> dict[int, list[str]]:
        """The newsletters each subscriber has live (pending or active), for listings."""
        wanted, found = list(subscriber_ids), {}
        with self.engine.connect() as conn:
            for i in range(0, len(wanted), 500):
                q = (
                    select(subscriptions.c.subscriber_id, subscriptions.c.newsletter)
                    .where(subscriptions.c.subscriber_id.in_(wanted[i : i + 500]))
                    .where(subscriptions.c.status.in_(LIVE))
                    .order_by(subscriptions.c.newsletter)
                )
                for sid, key in conn.execute(q):
                    found.setdefault(sid, []).append(key)
        return found


def on_address_status(conn: Connection, subscriber_id: Any, status: str, now: datetime) -> None:
    """What a change of the address's own status means for its subscriptions (the
    rules of this module; ``Subscribers`` calls it in the same transaction).
    ``subscriber_id``: an id, or a scalar subquery giving one."""
    if status == "active":
        conn.execute(
            update(subscriptions)
            .where(subscriptions.c.subscriber_id == subscriber_id, subscriptions.c.status == "pending")
            .values(status="active", changed=now)
        )
    elif status == "unsubscribed":
        _end(conn, subscriber_id, now)


def end_every(conn: Connection, subscriber_id: Any, now: datetime) -> int:
    """End every live subscription of ``subscriber_id`` in ``conn``'s transaction (a
    complaint or a hard bounce reported after sending: ``publisher.feedback``)."""
    return _end(conn, subscriber_id, now)


def _effective(status: str, address: str) -> str:
    """What a subscription gives: an active one of an address not (yet, or any longer)
    mailed is pending (unconfirmed address) or unsubscribed (unsubscribed, bounced)."""
    if status == "active" and address != "active":
        return "pending" if address == "pending" else "unsubscribed"
    return status


def in_audience(newsletter: Any) -> Any:
    """A newsletter's audience (its readers): active subscriptions of active subscribers.
    ``newsletter``: its key, or a bind parameter (a statement compiled once)."""
    return and_(
        subscriptions.c.newsletter == newsletter,
        subscriptions.c.status == "active",
        subscribers.c.status == "active",
        not_suppressed(subscribers.c.email),
    )


def _current(conn: Connection, subscriber_id: int) -> dict[str, Subscription]:
    q = select(subscriptions).where(subscriptions.c.subscriber_id == subscriber_id)
    return {r.newsletter: _subscription(r) for r in conn.execute(q)}


def _put(
    conn: Connection,
    subscriber_id: int,
    newsletter: str,
    status: str,
    sections: Sequence[str],
    now: datetime,
    *,
    unless_active: bool = False,
) -> bool:
    """Add or change the subscription in one statement (two requests for a new address
    at once: the second changes the row the first added). ``unless_active``: an active
    subscription is left as it is. True when a row was written."""
    values = {"status": status, "sections": json.dumps(list(sections), ensure_ascii=False), "changed": now}
    add = upsert(conn.dialect.name, subscriptions).values(
        subscriber_id=subscriber_id, newsletter=newsletter, created=now, **values
    )
    put = add.on_conflict_do_update(
        index_elements=[subscriptions.c.subscriber_id, subscriptions.c.newsletter],
        set_=values,
        where=subscriptions.c.status != "active" if unless_active else None,
    )
    return conn.execute(put.returning(subscriptions.c.newsletter)).first() is not None


def _end(conn: Connection, subscriber_id: Any, now: datetime, newsletter: str | None = None) -> int:
    q = update(subscriptions).where(
        subscriptions.c.subscriber_id == subscriber_id, subscriptions.c.status.in_(LIVE)
    )
    if newsletter is not None:
        q = q.where(subscriptions.c.newsletter == newsletter)
    return conn.execute(q.values(status="unsubscribed", changed=now)).rowcount


def _sections(raw: str) -> tuple[str, ...]:
    return tuple(json.loads(raw)) if raw and raw != "[]" else ()


def _subscription(r: object) -> Subscription:
    return Subscription(
        r.subscriber_id,  # type: ignore[attr-defined]
        r.newsletter,  # type: ignore[attr-defined]
        r.status,  # type: ignore[attr-defined]
        _sections(r.sections),  # type: ignore[attr-defined]
        r.created,  # type: ignore[attr-defined]
        r.changed,  # type: ignore[attr-defined]
    )
