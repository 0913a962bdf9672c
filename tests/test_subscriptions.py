"""Subscriptions: one per (subscriber, newsletter), pending until the double opt-in,
narrowed to sections where a newsletter allows it; the audience of a newsletter read in
batches. On SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from publisher import audience, config
from publisher.errors import UsageError
from publisher.store import Store
from publisher.store.schema import subscribers, subscriptions
from publisher.store.subscriptions import in_audience
from tests import pg
from tests.three_newsletters import NEWSLETTERS

postgresql = pg.postgresql


@pytest.fixture
def cfg(tmp_path: Path) -> config.Config:
    path = tmp_path / "config.toml"
    path.write_text('[site]\ntitle = "Example News"\n' + NEWSLETTERS, encoding="utf-8")
    return config.load(path)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        url = request.getfixturevalue("postgresql").createdb()
    opened = Store.open(url)
    yield opened
    opened.close()


def held(store: Store, email: str) -> dict[str, tuple[str, tuple[str, ...]]]:
    sub = store.subscribers.get(email)
    assert sub is not None
    return {k: (s.status, s.sections) for k, s in store.subscriptions.of(sub.id).items()}


def audience_of(store: Store, key: str) -> list[tuple[str, tuple[str, ...]]]:
    """The newsletter's audience by the one rule issues are queued with (in_audience)."""
    q = (
        select(subscribers.c.email, subscriptions.c.sections)
        .join(subscriptions, subscriptions.c.subscriber_id == subscribers.c.id)
        .where(in_audience(key))
        .order_by(subscribers.c.id)
    )
    with store.engine.connect() as conn:
        return [(email, tuple(json.loads(sections))) for email, sections in conn.execute(q)]


def test_an_operators_add_subscribes_to_the_signup_newsletters_or_those_named(store, cfg) -> None:
    audience.add(store, "a@example.com", config=cfg)
    audience.add(store, "b@example.com", config=cfg, newsletters=["daily", "breaking"], sections=["sport"])
    assert held(store, "a@example.com") == {"daily": ("active", ()), "weekly": ("active", ())}
    assert held(store, "b@example.com") == {"daily": ("active", ("sport",)), "breaking": ("active", ())}
    _, outcome = audience.add(store, "a@example.com", config=cfg, newsletters=["breaking"])
    assert outcome == "subscribed" and held(store, "a@example.com")["breaking"] == ("active", ())
    _, outcome = audience.add(store, "a@example.com", config=cfg, newsletters=["daily"])
    assert outcome == "already"


def test_without_newsletters_a_subscriber_gets_the_digest(store) -> None:
    audience.add(store, "reader@example.com")
    assert held(store, "reader@example.com") == {"digest": ("active", ())}
    assert audience_of(store, "digest") == [("reader@example.com", ())]


@pytest.mark.parametrize(
    ("keys", "sections", "problem"),
    [
        (["monthly"], None, "no newsletter 'monthly' (known: daily, weekly, breaking)"),
        (
            ["weekly", "breaking"],
            ["Sport"],
            "sections given, but no chosen newsletter offers a choice of sections (weekly, breaking)",
        ),
        (
            ["daily"],
            ["Weather"],
            "newsletter 'daily' has no section 'weather' (its sections: business, sport, culture)",
        ),
    ],
)
def test_unknown_newsletters_and_sections_are_one_line(store, cfg, keys, sections, problem) -> None:
    with pytest.raises(UsageError, match="^" + problem.replace("(", r"\(").replace(")", r"\)") + "$"):
        audience.add(store, "a@example.com", config=cfg, newsletters=keys, sections=sections)
    assert store.subscribers.get("a@example.com") is None  # nothing half-done


def test_choosing_every_section_is_all_of_them(cfg) -> None:
    daily = cfg.newsletter("daily")
    assert audience.narrowing(daily, ["Culture", "business", "SPORT"]) == []
    assert audience.narrowing(daily, ["Culture", "culture"]) == ["culture"]


def test_a_signup_waits_for_the_double_opt_in_and_leaves_active_ones_untouched(store, cfg) -> None:
    audience.add(store, "r@example.com", config=cfg, newsletters=["daily"], sections=["Business"])
    sub, waiting = audience.subscribe(store, cfg, "R@Example.com", ["daily", "weekly"], ["Sport"])
    assert waiting == ["weekly"]
    assert held(store, "r@example.com") == {"daily": ("active", ("business",)), "weekly": ("pending", ())}
    assert audience_of(store, "weekly") == []
    audience.confirm(store, sub)
    assert held(store, "r@example.com") == {"daily": ("active", ("business",)), "weekly": ("active", ())}
    assert audience_of(store, "weekly") == [("r@example.com", ())]


def test_a_new_address_is_pending_until_it_confirms(store, cfg) -> None:
    sub, waiting = audience.subscribe(store, cfg, "new@example.com")
    assert sub.status == "pending" and waiting == ["daily", "weekly"]
    assert audience_of(store, "daily") == []
    store.subscribers.change_status(sub.public_id, "active", sub.created, unless="active")  # the confirm link
    assert held(store, "new@example.com") == {"daily": ("active", ()), "weekly": ("active", ())}
    assert audience_of(store, "daily") == [("new@example.com", ())]


def test_preferences_are_saved_without_confirmation(store, cfg) -> None:
    sub, _ = audience.subscribe(store, cfg, "p@example.com", ["weekly"])
    changed = audience.set_preferences(store, cfg, sub, {"daily": ["Sport", "Culture"], "breaking": []})
    assert sorted(changed) == ["breaking", "daily", "weekly"]  # weekly left before it was confirmed
    assert held(store, "p@example.com") == {
        "daily": ("active", ("sport", "culture")),
        "breaking": ("active", ()),
        "weekly": ("unsubscribed", ()),
    }
    assert store.subscribers.get("p@example.com").status == "active"  # the signed link proved it
    assert audience_of(store, "daily") == [("p@example.com", ("sport", "culture"))]
    assert audience.set_preferences(store, cfg, sub, {"daily": ["sport", "culture"], "breaking": []}) == []


def test_leaving_one_newsletter_keeps_the_others(store, cfg) -> None:
    sub, _ = audience.add(store, "u@example.com", config=cfg)
    assert audience.unsubscribe(store, sub, "daily") is True
    assert audience.unsubscribe(store, sub, "daily") is False
    assert held(store, "u@example.com") == {"daily": ("unsubscribed", ()), "weekly": ("active", ())}
    assert audience_of(store, "daily") == [] and audience_of(store, "weekly") == [("u@example.com", ())]
    with pytest.raises(UsageError, match="unsubscribed from daily; .* --resubscribe"):
        audience.add(store, "u@example.com", config=cfg, newsletters=["daily"])
    _, outcome = audience.add(store, "u@example.com", config=cfg, newsletters=["daily"], resubscribe=True)
    assert outcome == "subscribed" and held(store, "u@example.com")["daily"] == ("active", ())


def test_unsubscribing_from_everything_ends_every_subscription(store, cfg) -> None:
    sub, _ = audience.add(store, "all@example.com", config=cfg, newsletters=["daily", "weekly", "breaking"])
    assert audience.unsubscribe_all(store, sub) == 3
    assert set(held(store, "all@example.com").values()) == {("unsubscribed", ())}
    assert store.subscribers.get("all@example.com").status == "unsubscribed"
    audience.add(store, "gone@example.com", config=cfg)
    audience.remove(store, "gone@example.com")  # publish subscribers remove
    assert set(held(store, "gone@example.com").values()) == {("unsubscribed", ())}


def test_a_bounced_address_keeps_its_choices_but_gets_nothing(store, cfg) -> None:
    audience.add(store, "b@example.com", config=cfg)
    store.subscribers.set_status("b@example.com", "bounced", store.subscribers.get("b@example.com").created)
    assert held(store, "b@example.com") == {"daily": ("active", ()), "weekly": ("active", ())}
    assert audience_of(store, "daily") == []
    assert store.subscriptions.counts()["daily"] == {"active": 0, "pending": 0, "unsubscribed": 1}


def test_the_audience_is_the_active_subscriptions_of_active_addresses(store, cfg) -> None:
    for i in range(10):
        audience.add(store, f"r{i}@example.com", config=cfg, newsletters=["daily"])
    audience.add(store, "other@example.com", config=cfg, newsletters=["weekly"])
    audience.subscribe(store, cfg, "pending@example.com", ["daily"])
    audience.unsubscribe(store, store.subscribers.get("r3@example.com"), "daily")
    emails = [email for email, _ in audience_of(store, "daily")]
    assert emails == [f"r{i}@example.com" for i in range(10) if i != 3]


def test_counts_per_newsletter(store, cfg) -> None:
    audience.add(store, "a@example.com", config=cfg)
    audience.add(store, "b@example.com", config=cfg, newsletters=["daily"])
    audience.subscribe(store, cfg, "c@example.com", ["weekly"])
    audience.unsubscribe(store, store.subscribers.get("b@example.com"), "daily")
    assert store.subscriptions.counts() == {
        "daily": {"active": 1, "pending": 0, "unsubscribed": 1},
        "weekly": {"active": 1, "pending": 1, "unsubscribed": 0},
    }


def test_import_reads_a_newsletters_column_and_export_writes_it(store, cfg) -> None:
    audience.add(store, "known@example.com", config=cfg, newsletters=["daily"])
    report = audience.import_csv(
        store,
        "email,name,newsletters\n"
        "one@example.com,One,daily breaking\n"
        "two@example.com,Two,\n"
        "bad@example.com,Bad,daily monthly\n"
        "known@example.com,Known,weekly\n",
        "people.csv",
        config=cfg,
    )
    assert (report.added, report.subscribed, report.already) == (2, 1, 0)
    assert report.problems == ["people.csv:4: no newsletter 'monthly' (known: daily, weekly, breaking)"]
    assert held(store, "one@example.com") == {"daily": ("active", ()), "breaking": ("active", ())}
    assert held(store, "two@example.com") == {"daily": ("active", ()), "weekly": ("active", ())}
    assert store.subscribers.get("bad@example.com") is None
    exported = "".join(audience.export_csv(store, batch=2)).splitlines()
    assert exported[0] == "email,name,status,created,newsletters"
    assert [(line.split(",")[0], line.split(",")[-1]) for line in exported[1:]] == [
        ("known@example.com", "daily weekly"),
        ("one@example.com", "breaking daily"),
        ("two@example.com", "daily weekly"),
    ]
    again = audience.import_csv(store, "\n".join(exported) + "\n", "again.csv", config=cfg)
    assert (again.added, again.subscribed, again.already, again.problems) == (0, 0, 3, [])


def test_a_bulk_add_skips_subscriptions_another_program_made_meanwhile(store, cfg) -> None:
    a, _ = audience.add(store, "a@example.com", config=cfg, newsletters=["weekly"])
    b, _ = audience.add(store, "b@example.com", config=cfg, newsletters=["breaking"])
    added = store.subscriptions.add_many(
        {a.id: {"daily": [], "weekly": []}, b.id: {"daily": ["sport"]}}, "active", a.created
    )
    assert added == 2  # a's weekly was there already
    assert held(store, "a@example.com") == {"daily": ("active", ()), "weekly": ("active", ())}
    assert held(store, "b@example.com") == {"breaking": ("active", ()), "daily": ("active", ("sport",))}


def test_many_signups_of_one_new_address_at_once_are_one_pending_subscription(store, cfg) -> None:
    """Ten requests for a new address at once (a double click, a retrying client): each
    is answered, none meets a unique-key error, one subscriber with one subscription per
    newsletter results."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    start = Barrier(10)

    def signup(_: int) -> list[str]:
        start.wait()
        return audience.subscribe(store, cfg, "stampede@example.com", ["daily", "weekly"])[1]

    for _ in range(5):  # the race is a window: several rounds of new addresses
        with ThreadPoolExecutor(max_workers=10) as pool:
            answers = list(pool.map(signup, range(10)))
        assert all(set(a) <= {"daily", "weekly"} for a in answers)
        with store.engine.connect() as conn:
            rows = conn.execute(select(subscriptions.c.newsletter, subscriptions.c.status)).all()
        assert sorted(rows) == [("daily", "pending"), ("weekly", "pending")]
        with store.engine.begin() as conn:
            conn.execute(subscriptions.delete())
            conn.execute(subscribers.delete())
