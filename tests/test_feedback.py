"""publisher.feedback.record: the rules for bounces and complaints, on real stores
(a SQLite file, and a throwaway PostgreSQL cluster for the concurrent case)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select

from publisher.config import BouncesConfig
from publisher.feedback import Event, bounce_kind, event_key, record
from publisher.store import Store
from publisher.store.schema import subscriptions
from tests import pg

postgresql = pg.postgresql
pg_url = pg.pg_url

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path):
    s = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    yield s
    s.close()


def subscriber(store: Store, email: str) -> int:
    sid = store.subscribers.add(email, "", "active", T0).id
    with store.engine.begin() as conn:
        for key in ("daily", "weekly"):
            conn.execute(
                insert(subscriptions).values(
                    subscriber_id=sid, newsletter=key, status="active", sections="[]", created=T0, changed=T0
                )
            )
    return sid


def subscriptions_of(store: Store, sid: int) -> set[str]:
    with store.engine.connect() as conn:
        q = select(subscriptions.c.status).where(subscriptions.c.subscriber_id == sid)
        return set(conn.execute(q).scalars())


def status(store: Store, email: str) -> str:
    found = store.subscribers.get(email)
    assert found is not None
    return found.status


def event(kind: str, n: object, **kw: object) -> Event:
    return Event(kind=kind, key=f"test-{kind}-{n}", source="dsn", at=kw.pop("at", T0), **kw)  # type: ignore[arg-type]


def test_a_complaint_suppresses_the_address_and_ends_its_subscription(store):
    sid = subscriber(store, "reader@example.com")
    done = record(store, [event("complaint", 1, subscriber_id=sid)])
    assert done.new == 1 and done.suppressed == ["reader@example.com"]
    assert status(store, "reader@example.com") == "unsubscribed"
    assert subscriptions_of(store, sid) == {"unsubscribed"}
    entry = store.feedback.suppressed("reader@example.com", T0)
    assert entry is not None and entry.reason == "complaint" and entry.expires is None


def test_a_hard_bounce_suppresses_and_ends_the_subscription_by_address_alone(store):
    sid = subscriber(store, "gone@example.com")
    other = subscriber(store, "other@example.com")
    done = record(store, [event("hard_bounce", 1, address="Gone@EXAMPLE.com", status="5.1.1")])
    assert done.suppressed == ["gone@example.com"]
    assert status(store, "gone@example.com") == "bounced"
    assert subscriptions_of(store, sid) == {"unsubscribed"} and subscriptions_of(store, other) == {"active"}
    assert store.feedback.suppressed("gone@example.com", T0).reason == "hard_bounce"


def test_the_same_event_twice_counts_once(store):
    sid = subscriber(store, "reader@example.com")
    soft = event("soft_bounce", 1, subscriber_id=sid, status="4.2.2")
    first = record(store, [soft, soft])
    again = record(store, [soft])
    assert (first.new, first.duplicates, again.new, again.duplicates) == (1, 1, 0, 1)
    assert len(store.feedback.events()) == 1


def test_soft_bounces_suspend_after_the_limit_within_the_window_only(store):
    rules = BouncesConfig(soft_limit=3, soft_window_days=7, soft_suspend_days=30)
    sid = subscriber(store, "full@example.com")
    spread = [event("soft_bounce", i, subscriber_id=sid, at=T0 + timedelta(days=5 * i)) for i in range(3)]
    done = record(store, spread, rules, now=T0 + timedelta(days=10))
    assert (
        done.suspended == []
        and store.feedback.suppressed("full@example.com", T0 + timedelta(days=10)) is None
    )
    close = [
        event("soft_bounce", 10 + i, subscriber_id=sid, at=T0 + timedelta(days=20, hours=i)) for i in range(3)
    ]
    now = T0 + timedelta(days=21)
    done = record(store, close, rules, now=now)
    assert done.suspended == ["full@example.com"]
    entry = store.feedback.suppressed("full@example.com", now)
    assert entry.reason == "soft_bounce" and entry.expires == now + timedelta(days=30)
    assert store.feedback.suppressed("full@example.com", now + timedelta(days=31)) is None  # it lapses
    assert status(store, "full@example.com") == "active"  # suspended, not unsubscribed


def test_policy_refusals_never_count_against_the_recipient(store):
    rules = BouncesConfig(soft_limit=1)
    sid = subscriber(store, "reader@example.com")
    done = record(store, [event("policy", i, subscriber_id=sid, status="5.7.1") for i in range(5)], rules)
    assert done.new == 5 and not done.suppressed and not done.suspended
    assert store.feedback.suppressed("reader@example.com", T0) is None
    assert status(store, "reader@example.com") == "active" and subscriptions_of(store, sid) == {"active"}


def test_a_hard_bounce_replaces_a_suspension_and_a_soft_one_never_weakens_it(store):
    rules = BouncesConfig(soft_limit=1, soft_suspend_days=3)
    sid = subscriber(store, "reader@example.com")
    record(store, [event("soft_bounce", 1, subscriber_id=sid)], rules, now=T0)
    record(store, [event("hard_bounce", 2, subscriber_id=sid)], rules, now=T0)
    record(store, [event("soft_bounce", 3, subscriber_id=sid)], rules, now=T0)
    entry = store.feedback.suppressed("reader@example.com", T0 + timedelta(days=400))
    assert entry.reason == "hard_bounce" and entry.expires is None


def test_the_report_names_the_delivery_so_the_subscribers_own_address_is_suppressed(store):
    sid = subscriber(store, "reader@example.com")  # a forwarder bounced for it under another name
    record(store, [event("hard_bounce", 1, subscriber_id=sid, address="forwarded@elsewhere.example")])
    assert store.feedback.suppressed("reader@example.com", T0) is not None
    assert store.feedback.suppressed("forwarded@elsewhere.example", T0) is None


def test_a_domain_entry_covers_every_address_there(store):
    store.feedback.suppress("@example.org", "manual", "", T0)
    assert store.feedback.suppressed("anyone@example.org", T0).entry == "@example.org"
    assert store.feedback.suppressed("anyone@example.com", T0) is None


def test_an_unknown_subscriber_is_counted_and_changes_nothing(store):
    done = record(store, [event("complaint", 1, subscriber_id=999)])
    assert done.new == 1 and done.unknown == 1 and not done.suppressed


def test_events_are_checked_when_made():
    with pytest.raises(ValueError, match="unknown feedback kind"):
        Event(kind="bounce", key="k", source="dsn", at=T0, address="a@example.com")
    with pytest.raises(ValueError, match="names an address or a subscriber"):
        Event(kind="complaint", key="k", source="arf", at=T0)
    with pytest.raises(ValueError, match="aware"):
        Event(kind="complaint", key="k", source="arf", at=datetime(2026, 1, 1), address="a@example.com")
    assert event_key("a", "b") != event_key("ab") and len(event_key("x")) == 64


@pytest.mark.parametrize(
    "status, diagnostic, action, kind",
    [
        ("5.1.1", "smtp; 550 5.1.1 <a@example.com>: user unknown", "failed", "hard_bounce"),
        ("5.2.1", "smtp; 550 5.2.1 mailbox disabled", "failed", "hard_bounce"),
        ("5.1.10", "", "failed", "hard_bounce"),  # RFC 7505 null MX
        ("5.2.2", "smtp; 552 5.2.2 mailbox full", "failed", "soft_bounce"),
        ("4.4.7", "", "failed", "soft_bounce"),  # gave up after retrying
        ("5.7.1", "smtp; 550 5.7.1 message rejected as spam", "failed", "policy"),
        ("5.7.515", "", "failed", "policy"),
        ("", "X-Postfix; host said: 550 No such user here", "failed", "hard_bounce"),
        ("4.2.2", "", "delayed", "delayed"),
        ("2.0.0", "smtp; 250 ok", "delivered", "delivered"),
    ],
)
def test_reports_are_read_by_the_one_reply_classification(status, diagnostic, action, kind):
    assert bounce_kind(status, diagnostic, action=action) == kind


@pytest.mark.slow
def test_concurrent_intakes_of_the_same_report_count_it_once_on_postgresql(pg_url):
    stores = [Store.open(pg_url) for _ in range(4)]
    try:
        sid = subscriber(stores[0], "reader@example.com")
        soft = [event("soft_bounce", i, subscriber_id=sid) for i in range(3)]
        results, barrier = [], threading.Barrier(len(stores))

        def intake(s: Store) -> None:
            barrier.wait()
            results.append(record(s, soft, BouncesConfig(soft_limit=3)))

        threads = [threading.Thread(target=intake, args=(s,)) for s in stores]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sum(r.new for r in results) == 3 and sum(r.duplicates for r in results) == 9
        assert sum(len(r.suspended) for r in results) == 1
        assert len(stores[0].feedback.events()) == 3
    finally:
        for s in stores:
            s.close()


def _unsuppressed(s: Store, now: datetime) -> list[str]:
    """Who the filter lets through, read through SQLAlchemy and, as the sending loop
    reads it, compiled once and run on a driver cursor: both must agree."""
    from publisher.store.feedback import not_suppressed
    from publisher.store.ledger import _Compiled
    from publisher.store.schema import subscribers

    q = (
        select(subscribers.c.email)
        .where(not_suppressed(subscribers.c.email, now))
        .order_by(subscribers.c.email)
    )
    with s.engine.connect() as conn:
        found = list(conn.execute(q).scalars())
    compiled = _Compiled(s.engine, q)
    raw = s.engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute(compiled.sql, compiled.args())
        assert [r[0] for r in cur.fetchall()] == found
    finally:
        raw.close()
    return found


def check_the_sending_filter(s: Store) -> None:
    for email in ("a@example.com", "b@example.com", "c@spam.example", "d@example.net"):
        subscriber(s, email)
    s.feedback.suppress("a@example.com", "complaint", "", T0)
    s.feedback.suppress("@spam.example", "manual", "", T0)
    s.feedback.suppress("d@example.net", "soft_bounce", "", T0, expires=T0 + timedelta(hours=1))
    assert _unsuppressed(s, T0) == ["b@example.com"]
    assert _unsuppressed(s, T0 + timedelta(hours=2)) == ["b@example.com", "d@example.net"]  # suspension over


def test_the_sending_filter_skips_suppressed_addresses_and_domains(store):
    check_the_sending_filter(store)


@pytest.mark.slow
def test_the_sending_filter_on_postgresql(pg_url):
    s = Store.open(pg_url)
    try:
        check_the_sending_filter(s)
    finally:
        s.close()
