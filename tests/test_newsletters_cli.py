"""``publish newsletters`` (and the newsletter lines of ``publish status``): each
newsletter's schedule and next run, subscriber counts, last issue and held issue."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from pathlib import Path

import pytest

from tests.three_newsletters import with_newsletters


@pytest.fixture
def nl_site(site: Path, run_publish) -> Path:
    with_newsletters(site)
    run_publish(site, "subscribers", "add", "ann@example.com")  # daily, weekly
    run_publish(
        site, "subscribers", "add", "bo@example.com", "--newsletter", "daily", "--newsletter", "breaking"
    )
    run_publish(site, "subscribers", "add", "cy@example.com", "--newsletter", "weekly")
    run_publish(site, "subscribers", "remove", "cy@example.com")
    return site


def add_issue(site: Path, newsletter: str, key: str, status: str, created: str) -> None:
    """An issue row as the ledger keeps it (held issues are made by publish now)."""
    with sqlite3.connect(site / "publisher.db") as conn:
        conn.execute(
            "INSERT INTO digests (key, newsletter, created, subject, status, html, text) "
            "VALUES (?, ?, ?, 's', ?, '', '')",
            (key, newsletter, created, status),
        )
    conn.close()


def test_newsletters_lists_each_with_counts_schedule_and_issues(nl_site: Path, run_publish) -> None:
    add_issue(nl_site, "daily", "2026-12-01", "done", "2026-11-30T22:00:00.000000Z")
    add_issue(nl_site, "daily", "2026-12-02", "held", "2026-12-01T22:00:00.000000Z")
    add_issue(nl_site, "weekly", "2026-11-28", "done", "2026-11-28T00:00:00.000000Z")
    found = {n["key"]: n for n in json.loads(run_publish(nl_site, "newsletters", "--json").stdout)}
    assert list(found) == ["daily", "weekly", "breaking"]
    assert found["daily"]["subscribers"] == {"active": 2, "pending": 0, "unsubscribed": 0}
    assert found["weekly"]["subscribers"] == {"active": 1, "pending": 0, "unsubscribed": 1}
    assert found["breaking"]["subscribers"] == {"active": 1, "pending": 0, "unsubscribed": 0}
    assert found["daily"]["last_issue"]["key"] == "daily/2026-12-02"
    assert found["daily"]["held"]["key"] == "daily/2026-12-02"
    assert found["weekly"]["last_issue"]["status"] == "done" and found["weekly"]["held"] is None
    assert found["breaking"]["last_issue"] is None and found["breaking"]["next_run"] is None
    daily_next = datetime.fromisoformat(found["daily"]["next_run"])
    assert (daily_next.hour, daily_next.minute, daily_next.utcoffset().total_seconds()) == (7, 0, 9 * 3600)
    weekly_next = datetime.fromisoformat(found["weekly"]["next_run"])
    assert weekly_next.weekday() == 5 and weekly_next.hour == 9  # "0 9 * * 6": Saturdays, 09:00 KST

    text = run_publish(nl_site, "newsletters").stdout
    assert "newsletter daily: The Morning Briefing\n" in text
    assert "  subscribers: 2 active, 0 pending, 0 unsubscribed\n" in text
    assert (
        "  held: daily/2026-12-02 held 2026-12-02 07:00 KST (publish issues approve daily/2026-12-02)\n"
        in text
    )
    assert "  schedule: instant (as new articles arrive)\n" in text
    assert "  last issue: none yet" in text
    status = run_publish(nl_site, "status").stdout
    assert "newsletter weekly: The Week\n  schedule: 0 9 * * 6 (next: " in status
    report = json.loads(run_publish(nl_site, "status", "--json").stdout)
    assert [n["key"] for n in report["newsletters"]] == ["daily", "weekly", "breaking"]


def test_a_site_without_newsletters_lists_its_digest(site: Path, run_publish) -> None:
    run_publish(site, "subscribers", "add", "reader@example.com")
    [digest] = json.loads(run_publish(site, "newsletters", "--json").stdout)
    assert (digest["key"], digest["schedule"], digest["subscribers"]["active"]) == ("digest", "0 7 * * *", 1)
    by_hand = (
        (site / "config.toml").read_text(encoding="utf-8").replace('digest = "0 7 * * *"', 'digest = ""')
    )
    (site / "config.toml").write_text(by_hand, encoding="utf-8")
    assert (
        "  schedule: by hand only (publish now --newsletter digest)\n"
        in run_publish(site, "newsletters").stdout
    )
