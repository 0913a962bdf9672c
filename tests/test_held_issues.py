"""Held issues, as real ``publish`` processes: a newsletter with ``approval = true``
creates its issue held, sends its editors a marked test copy, and sends readers
nothing until ``publish issues approve``; ``skip`` discards it and its articles wait
for the next issue; one held issue per newsletter at a time."""

from __future__ import annotations

import json
import re

from publisher import config as configuration
from publisher import digest as digests
from publisher.i18n import for_config
from tests.newsletter_site import (
    BUSINESS,
    NEWSLETTERS,
    add_article,
    html_of,
    mails_to,
    newsletter_of,
    subscribe,
    text_of,
    titles_in,
    today,
    with_newsletters,
)

HELD = NEWSLETTERS.replace(
    'subject = "{{ newsletter.title }}: {{ date }}"',
    'subject = "{{ newsletter.title }}: {{ date }}"\napproval = true\n'
    'editors = ["editor@example.com", "desk@example.com"]',
)


def test_an_issue_waits_for_approval_and_its_editors_get_a_marked_copy(site, run_publish):
    with_newsletters(site, HELD)
    subscribe(site, "reader@example.com", "daily", "money")
    report = json.loads(run_publish(site, "now", "--json").stdout)
    key = f"money/{today()}"
    held = {i["newsletter"]: i for i in report["issues"]}["money"]
    assert held["key"] == key and held["state"] == "held"
    assert [newsletter_of(m) for m in mails_to(site, "reader@example.com")] == ["daily"]
    for editor in ("editor@example.com", "desk@example.com"):
        [copy] = mails_to(site, editor)
        assert copy["Subject"].startswith("[Held for approval] Money Matters: ")
        assert "held for approval" in html_of(copy) and "held for approval" in text_of(copy)
        assert titles_in(copy) == BUSINESS
    listed = run_publish(site, "issues", "list", "--newsletter", "money").stdout
    assert key in listed and "held" in listed
    assert f"daily/{today()}" not in listed
    assert key in run_publish(site, "status").stdout

    # One held issue per newsletter: the next run makes no new money issue, and says so.
    add_article(site, "100_battery.md", "Battery maker doubles output", "Business")
    later = json.loads(run_publish(site, "now", "--json").stdout)
    assert [i["newsletter"] for i in later["issues"]] == ["daily"]
    assert any(key in line and "held" in line for line in later["waiting"]), later["waiting"]
    assert "held" in run_publish(site, "now").stdout

    approved = run_publish(site, "issues", "approve", key)
    assert key in approved.stdout
    money = [m for m in mails_to(site, "reader@example.com") if newsletter_of(m) == "money"]
    assert len(money) == 1 and not money[0]["Subject"].startswith("[")
    assert "held for approval" not in html_of(money[0])
    assert titles_in(money[0]) == BUSINESS
    again = run_publish(site, "issues", "approve", key, check=False)
    assert again.returncode == 2 and key in again.stderr and "Traceback" not in again.stderr
    assert "done" in run_publish(site, "issues", "list", "--newsletter", "money").stdout


def test_a_skipped_issue_sends_nothing_and_its_articles_wait_for_the_next(site, run_publish):
    with_newsletters(site, HELD)
    subscribe(site, "reader@example.com", "money")
    run_publish(site, "now")
    key = f"money/{today()}"
    run_publish(site, "issues", "skip", key)
    assert "skipped" in run_publish(site, "issues", "list").stdout
    assert mails_to(site, "reader@example.com") == []
    nothing = run_publish(site, "issues", "approve", key, check=False)
    assert nothing.returncode == 2

    report = json.loads(run_publish(site, "now", "--json").stdout)
    [issue] = report["issues"]
    assert issue["key"] == f"money/{today()}-2" and issue["articles"] == 2 and issue["state"] == "held"
    run_publish(site, "issues", "approve", issue["key"])
    [msg] = mails_to(site, "reader@example.com")
    assert titles_in(msg) == BUSINESS


def test_a_test_copy_goes_to_any_address(site, run_publish):
    with_newsletters(site, HELD)
    run_publish(site, "now")
    key = f"money/{today()}"
    run_publish(site, "issues", "test", key, "--to", "proof@example.com")
    [copy] = mails_to(site, "proof@example.com")
    assert copy["Subject"].startswith("[Held for approval] ")
    assert titles_in(copy) == BUSINESS
    bad = run_publish(site, "issues", "test", "money/1999-01-01", "--to", "proof@example.com", check=False)
    assert bad.returncode == 2 and "money/1999-01-01" in bad.stderr
    address = run_publish(site, "issues", "test", key, "--to", "not-an-address", check=False)
    assert address.returncode == 2 and "not-an-address" in address.stderr


def test_the_held_mark_is_translated(site):
    cfg = site / "config.toml"
    cfg.write_text(
        cfg.read_text(encoding="utf-8").replace('language = "en"', 'language = "ko"'), encoding="utf-8"
    )
    config = configuration.load(cfg)
    subject, html, text = digests.held_copy(
        "제목", "<html><body><p>x</p></body></html>", "x\n", for_config(config)
    )
    assert subject != "제목" and not subject.startswith("[Held")
    assert "held for approval" not in html and "held for approval" not in text
    banner = html[html.index("<body>") + len("<body>") : html.index("<p>x</p>")]
    assert re.search("[가-힣]", banner) and re.search("[가-힣]", text.split("x")[0])
