"""Issues per newsletter, as real ``publish`` processes on the demo site: each
newsletter's articles (its sections), each article at most once per newsletter,
corrections in the next issue, readers' narrowed sections rendered once per choice,
and the mail of each newsletter (List-Id, unsubscribe, footer, Message-ID)."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from publisher import config as configuration
from publisher.messages import Messages
from publisher.store import Store
from tests.newsletter_site import (
    BUSINESS,
    CULTURE,
    EVERY_TITLE,
    LIST_IDS,
    SPORTS,
    add_article,
    html_of,
    mails_to,
    newsletter_of,
    received,
    subscribe,
    text_of,
    titles_in,
    today,
    with_newsletters,
)


def issues_of(report: dict) -> dict[str, dict]:
    return {i["newsletter"]: i for i in report["issues"]}


def test_each_newsletter_sends_its_own_issue_of_its_own_sections(site, run_publish):
    with_newsletters(site)
    subscribe(site, "all@example.com", "daily", "money", "weekend")
    subscribe(site, "money@example.com", "money")
    report = json.loads(run_publish(site, "now", "--json").stdout)
    day = today()
    issues = issues_of(report)
    assert {k: (i["key"], i["articles"]) for k, i in issues.items()} == {
        "daily": (f"daily/{day}", 9),
        "money": (f"money/{day}", 2),
        "weekend": (f"weekend/{day}", 3),
    }
    assert report["delivery"]["sent"] == 4

    mine = {newsletter_of(m): m for m in mails_to(site, "all@example.com")}
    assert sorted(mine) == ["daily", "money", "weekend"]
    assert titles_in(mine["daily"]) == EVERY_TITLE
    assert titles_in(mine["money"]) == BUSINESS
    assert titles_in(mine["weekend"]) == CULTURE | SPORTS
    for key, msg in mine.items():
        assert msg["List-Id"] == LIST_IDS[key]
    assert mine["money"]["Subject"].startswith("Money Matters: ")
    assert mine["daily"]["Subject"].startswith("The Morning Briefing — ")
    [theirs] = mails_to(site, "money@example.com")
    assert newsletter_of(theirs) == "money" and titles_in(theirs) == BUSINESS

    again = json.loads(run_publish(site, "now", "--json").stdout)
    assert again["issues"] == [] and again["delivery"]["sent"] == 0
    assert len(received(site)) == 4


@pytest.mark.slow
def test_an_article_goes_once_per_newsletter_and_a_correction_in_its_next_issue(site, run_publish):
    with_newsletters(site)
    subscribe(site, "reader@example.com", "daily", "money", "weekend")
    run_publish(site, "now")
    add_article(site, "100_battery.md", "Battery maker doubles output", "Business")
    second = issues_of(json.loads(run_publish(site, "now", "--json").stdout))
    day = today()
    assert {k: (i["key"], i["articles"]) for k, i in second.items()} == {
        "daily": (f"daily/{day}-2", 1),
        "money": (f"money/{day}-2", 1),
    }  # weekend carries no Business: nothing new for it, no issue

    # A correction of a story money and daily carried, and one more new story.
    chip = site / "seeds" / "005_chip_investment.md"
    chip.write_text(chip.read_text(encoding="utf-8").replace("Cheonan", "Cheonan and Asan"), encoding="utf-8")
    add_article(site, "101_bank.md", "Bank raises its outlook", "Business", day=29)
    third = issues_of(json.loads(run_publish(site, "now", "--json").stdout))
    assert sorted(third) == ["daily", "money"]
    by_newsletter: dict[str, list] = {}
    for msg in mails_to(site, "reader@example.com"):
        by_newsletter.setdefault(newsletter_of(msg), []).append(msg)
    assert Counter({k: len(v) for k, v in by_newsletter.items()}) == Counter(daily=3, money=3, weekend=1)
    latest_money = max(by_newsletter["money"], key=lambda m: m["Date"].datetime)
    text = " ".join(text_of(latest_money).split())
    assert "Bank raises its outlook" in text
    assert "Updated" in text and "Chipmaker plans new packaging plant in Cheonan" in text
    # Every new story reached each newsletter exactly once (the correction aside).
    for key, msgs in by_newsletter.items():
        seen = Counter(t for m in msgs for t in titles_in(m, EVERY_TITLE | {"Battery maker doubles output"}))
        corrected = {"Chipmaker plans new packaging plant in Cheonan"}
        assert all(n == 1 for t, n in seen.items() if t not in corrected), (key, seen)


def test_readers_who_narrowed_a_newsletter_get_only_their_sections(site, run_publish):
    with_newsletters(site)
    subscribe(site, "sport@example.com", "weekend", sections="Sports")
    subscribe(site, "culture@example.com", "weekend", sections="Culture")
    subscribe(site, "culture2@example.com", "weekend", sections="culture")
    subscribe(site, "everything@example.com", "weekend")
    subscribe(site, "business@example.com", "daily", sections="Business")
    report = json.loads(run_publish(site, "now", "--json").stdout)
    issues = issues_of(report)
    # One rendering per distinct choice, never per reader.
    assert issues["weekend"]["renditions"] == 3  # everything, Sports, Culture
    assert issues["daily"]["renditions"] <= 2
    [sport] = mails_to(site, "sport@example.com")
    assert titles_in(sport) == SPORTS
    [culture] = mails_to(site, "culture@example.com")
    assert titles_in(culture) == CULTURE
    [culture2] = mails_to(site, "culture2@example.com")
    assert titles_in(culture2) == CULTURE
    [everything] = mails_to(site, "everything@example.com")
    assert titles_in(everything) == CULTURE | SPORTS
    [business] = mails_to(site, "business@example.com")
    assert titles_in(business) == BUSINESS

    # Something new for the Culture readers only: no mail, and no delivery, for the others.
    add_article(site, "102_museum.md", "Museum reopens after renovation", "Culture")
    issues = issues_of(json.loads(run_publish(site, "now", "--json").stdout))
    assert issues["weekend"]["key"] == f"weekend/{today()}-2"
    assert len(mails_to(site, "sport@example.com")) == 1
    assert len(mails_to(site, "culture@example.com")) == 2
    assert len(mails_to(site, "everything@example.com")) == 2
    assert len(mails_to(site, "business@example.com")) == 1
    store = Store.of(configuration.load(site / "config.toml"))
    try:
        [issue] = [d for d in store.ledger.all_digests() if d.issue_key == f"weekend/{today()}-2"]
        assert store.ledger.delivery_counts(issue.id) == {"sent": 3}
    finally:
        store.close()


def test_publish_now_newsletter_sends_just_the_ones_named(site, run_publish):
    with_newsletters(site)
    subscribe(site, "reader@example.com", "daily", "money", "weekend")
    only = json.loads(run_publish(site, "now", "--newsletter", "money", "--json").stdout)
    assert [i["newsletter"] for i in only["issues"]] == ["money"]
    assert [newsletter_of(m) for m in received(site)] == ["money"]
    rest = json.loads(run_publish(site, "now", "--json").stdout)
    assert sorted(i["newsletter"] for i in rest["issues"]) == ["daily", "weekend"]
    unknown = run_publish(site, "now", "--newsletter", "nosuch", check=False)
    assert unknown.returncode == 2
    assert unknown.stderr.strip().count("\n") == 0 and "nosuch" in unknown.stderr
    assert "Traceback" not in unknown.stderr


def test_each_newsletters_mail_names_it_in_its_headers_links_and_footer(site, run_publish):
    with_newsletters(site)
    subscribe(site, "reader@example.com", "daily", "money")
    run_publish(site, "now")
    mine = {newsletter_of(m): m for m in mails_to(site, "reader@example.com")}
    config = configuration.load(site / "config.toml")
    store = Store.of(config)
    try:
        messages = Messages.for_site(config, store)
        reader = store.subscribers.get("reader@example.com")
    finally:
        store.close()
    tokens = {}
    for key, msg in mine.items():
        one_click, mailto = [u.strip().strip("<>") for u in msg["List-Unsubscribe"].split(",")]
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        token = re.fullmatch(r"http://127\.0\.0\.1:8000/unsubscribe/([\w.-]+)", one_click).group(1)
        assert mailto.endswith(token)
        public_id, newsletter, reason = messages.signer.verify_for("unsubscribe", token)
        assert (public_id, newsletter, reason) == (reader.public_id, key, "")
        tokens[key] = token
        html, text = html_of(msg), text_of(msg)
        title = {"daily": "The Morning Briefing", "money": "Money Matters"}[key]
        assert f"Unsubscribe from {title}" in html and f"Unsubscribe from {title}" in text
        assert "Manage your newsletters" in html and "Manage your newsletters" in text
        manage = re.search(r'href="(http://127\.0\.0\.1:8000/preferences/[^"]+)"[^>]*>\s*Manage', html)
        assert manage, html[-2000:]
        assert messages.signer.verify("preferences", manage.group(1).rsplit("/", 1)[1])[0] == reader.public_id
        assert one_click in html
        assert re.fullmatch(r"<[\w.-]+@127\.0\.0\.1>", msg["Message-ID"])
    assert tokens["daily"] != tokens["money"]
    assert mine["daily"]["Message-ID"] != mine["money"]["Message-ID"]


def test_a_site_without_newsletters_has_the_one_newsletter_digest(site, run_publish):
    run_publish(site, "subscribers", "add", "reader@example.com")
    report = json.loads(run_publish(site, "now", "--json").stdout)
    assert report["digest"] == f"digest/{today()}"
    assert [(i["newsletter"], i["articles"]) for i in report["issues"]] == [("digest", 9)]
    [msg] = received(site)
    assert msg["List-Id"] == '"Korea JoongAng Daily" <digest.127.0.0.1>'
    assert titles_in(msg) == EVERY_TITLE
    assert "Manage your newsletters" in html_of(msg)
