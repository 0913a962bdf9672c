"""`publish serve` with several newsletters, as a real process on loopback: the subscribe
form with newsletter choices, the preference centre, one-click unsubscribe from one
newsletter. State is read back from the real SQLite store, mail from the real Maildir."""

from __future__ import annotations

import itertools
import sqlite3
import time
from pathlib import Path
from unittest import mock
from urllib.parse import urlencode

import httpx
import pytest
from itsdangerous import TimestampSigner
from lxml import html as lxml_html

from publisher.tokens import Signer
from tests.sites import publish as _publish
from tests.three_newsletters import OFFERED, with_newsletters
from tests.webserver import (
    OLD_SECRET,
    SECRET,
    Server,
    free_port,
    link_in,
    mails_to,
    make_site,
    wait_for_mails,
)
from tests.webserver import operator_publish as publish
from tests.webserver import subscriptions_of as subscriptions

SAME_ORIGIN = {"sec-fetch-site": "same-origin"}
_clients = itertools.count(1)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    port = free_port()
    site = make_site(
        tmp_path_factory.mktemp("newsletters") / "site", port, 'trusted_proxies = ["127.0.0.1"]\n'
    )
    with_newsletters(site, OFFERED)
    publish(site, "now", "--no-email")
    srv = Server(site, port)
    yield srv
    srv.stop()


def new_client() -> dict[str, str]:
    n = next(_clients)
    return {"x-forwarded-for": f"203.0.{n // 250}.{n % 250 + 1}"}


FORM = {"content-type": "application/x-www-form-urlencoded"}


def post(
    server: Server, url: str, fields: list[tuple[str, str]], headers: dict[str, str] | None = None
) -> httpx.Response:
    """A form post with repeated fields, as a browser sends it."""
    return server.client.post(
        url, content=urlencode(fields), headers={**FORM, **SAME_ORIGIN, **(headers or {})}
    )


def subscribe(server: Server, fields: list[tuple[str, str]]) -> httpx.Response:
    return post(server, "/subscribe", fields, new_client())


def public_id(server: Server, email: str) -> str:
    with sqlite3.connect(server.site / "publisher.db") as db:
        [(pid,)] = db.execute("SELECT public_id FROM subscribers WHERE email = ?", (email,)).fetchall()
    return pid


def preferences_url(server: Server, email: str) -> str:
    return server.url("/preferences/" + Signer(SECRET).sign("preferences", public_id(server, email)))


def confirmed(server: Server, email: str, *keys: str) -> None:
    """Subscribe ``email`` to ``keys`` through the form and confirm, as a reader would."""
    before = len(mails_to(server.site, email))
    r = subscribe(server, [("email", email), ("newsletter", ""), *(("newsletter", k) for k in keys)])
    assert r.status_code == 200, r.text
    [*_, mail] = wait_for_mails(server.site, email, before + 1)
    assert server.client.post(link_in(mail, "confirm"), headers=SAME_ORIGIN).status_code == 200


def form_state(page: str) -> dict[str, bool]:
    """Every checkbox of the page's form: its value -> ticked."""
    doc = lxml_html.fromstring(page)
    return {
        box.get("value"): box.get("checked") is not None for box in doc.xpath("//input[@type='checkbox']")
    }


def labelled(page: str) -> None:
    """Every checkbox has a label; the newsletter boxes sit in a fieldset with a legend."""
    doc = lxml_html.fromstring(page)
    for box in doc.xpath("//input[@type='checkbox']"):
        has_label = box.get("id") and doc.xpath(f"//label[@for='{box.get('id')}']")
        assert has_label or box.xpath("ancestor::label"), box.get("value")
        assert box.xpath("ancestor::fieldset[legend]"), box.get("value")


# -- the subscribe form ------------------------------------------------------------------


def test_the_front_page_offers_the_signup_newsletters_ticked(server: Server) -> None:
    page = server.client.get("/").text
    assert form_state(page) == {"daily": True, "weekly": True}  # alerts has signup = false
    labelled(page)
    assert "The Morning Briefing" in page and "Our editors&#39; picks, on Saturdays." in page
    assert "Breaking News" not in page


def test_a_site_with_one_newsletter_has_the_form_of_before(site: Path) -> None:
    _publish(site, "now", "--no-email")
    page = (site / "public" / "index.html").read_text("utf-8")
    assert 'name="email"' in page and 'name="newsletter"' not in page and "<fieldset" not in page


def test_subscribing_to_chosen_newsletters_needs_one_confirmation_and_keeps_the_others(
    server: Server,
) -> None:
    email = "chooser@example.com"
    r = subscribe(server, [("email", email), ("newsletter", ""), ("newsletter", "weekly")])
    assert r.status_code == 200 and "Check your inbox" in r.text
    [mail] = wait_for_mails(server.site, email, 1)
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "The Week in Korea" in text and "The Morning Briefing" not in text
    assert subscriptions(server, email) == {"weekly": ("pending", [])}
    confirm = link_in(mail, "confirm")
    page = server.client.get(confirm)
    assert "The Week in Korea" in page.text and subscriptions(server, email)["weekly"][0] == "pending"
    done = server.client.post(confirm, headers=SAME_ORIGIN)
    assert done.status_code == 200 and "You are subscribed" in done.text
    assert subscriptions(server, email) == {"weekly": ("active", [])}
    assert "/preferences/" in done.text  # where to change them

    # Asking for another newsletter: a confirmation for that one; the active one untouched.
    subscribe(server, [("email", email), ("newsletter", "daily"), ("newsletter", "weekly")])
    [_, second] = wait_for_mails(server.site, email, 2)
    text = second.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "The Morning Briefing" in text and "The Week in Korea" not in text
    assert subscriptions(server, email) == {"weekly": ("active", []), "daily": ("pending", [])}
    server.client.post(link_in(second, "confirm"), headers=SAME_ORIGIN)
    assert subscriptions(server, email) == {"weekly": ("active", []), "daily": ("active", [])}

    # Asking again for what it has: the "already" note, linking to the preference centre.
    subscribe(server, [("email", email), ("newsletter", "daily")])
    [*_, note] = wait_for_mails(server.site, email, 3)
    assert note["Subject"].startswith("You are already subscribed")
    assert "/preferences/" in link_in(note, "preferences")
    assert subscriptions(server, email) == {"weekly": ("active", []), "daily": ("active", [])}


def test_a_form_without_newsletter_fields_subscribes_to_the_signup_newsletters(server: Server) -> None:
    email = "plain-form@example.com"
    assert subscribe(server, [("email", email)]).status_code == 200
    wait_for_mails(server.site, email, 1)
    assert subscriptions(server, email) == {"daily": ("pending", []), "weekly": ("pending", [])}


def test_a_newsletter_offered_nowhere_can_still_be_asked_for(server: Server) -> None:
    email = "alerts-only@example.com"
    r = subscribe(server, [("email", email), ("newsletter", "alerts"), ("section", "daily:sports")])
    assert r.status_code == 200
    wait_for_mails(server.site, email, 1)
    # sections are chosen in the preference centre; the subscribe form does not read them
    assert subscriptions(server, email) == {"alerts": ("pending", [])}


def test_choosing_none_or_an_unknown_newsletter_is_a_clear_page_and_changes_nothing(server: Server) -> None:
    email = "unknown-choice@example.com"
    none = subscribe(server, [("email", email), ("newsletter", "")])
    assert none.status_code == 400 and "Choose at least one newsletter" in none.text
    assert 'name="newsletter"' in none.text  # the form again
    for bad in ("nightly", "<script>x</script>", "daily:sports"):
        r = subscribe(server, [("email", email), ("newsletter", bad)])
        assert r.status_code == 400, bad
        assert "There is no newsletter" in r.text and "<script>x" not in r.text
    time.sleep(0.3)
    assert mails_to(server.site, email) == [] and subscriptions(server, email) == {}


# -- the preference centre ---------------------------------------------------------------


def test_the_preference_centre_shows_every_newsletter_and_the_readers_choices(server: Server) -> None:
    email = "shown@example.com"
    confirmed(server, email, "daily")
    url = preferences_url(server, email)
    for _ in range(20):  # mail scanners fetch links: nothing changes
        assert server.client.head(url).status_code == 200
        page = server.client.get(url)
        assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store" and page.headers["referrer-policy"] == "no-referrer"
    assert form_state(page.text) == {
        "daily": True,
        "weekly": False,
        "alerts": False,
        "daily:business": True,
        "daily:culture": True,
        "daily:sports": True,
    }
    labelled(page.text)
    assert email in page.text and "Breaking News" in page.text
    assert subscriptions(server, email) == {"daily": ("active", [])}


def test_saving_narrows_sections_leaves_and_joins_newsletters_without_confirmation(server: Server) -> None:
    email = "saver@example.com"
    confirmed(server, email, "daily", "weekly")
    mails = len(mails_to(server.site, email))
    url = preferences_url(server, email)
    r = post(
        server,
        url,
        [
            ("newsletter", ""),
            ("newsletter", "daily"),
            ("section", "daily:business"),
            ("section", "daily:culture"),
            ("newsletter", "alerts"),
        ],
    )
    assert r.status_code == 200 and "Your choices are saved" in r.text
    assert subscriptions(server, email) == {
        "daily": ("active", ["business", "culture"]),
        "weekly": ("unsubscribed", []),
        "alerts": ("active", []),
    }
    assert form_state(r.text)["daily:sports"] is False and form_state(r.text)["weekly"] is False
    # Every section ticked again: the whole newsletter.
    every = [("section", f"daily:{s}") for s in ("business", "culture", "sports")]
    post(server, url, [("newsletter", ""), ("newsletter", "daily"), *every])
    assert subscriptions(server, email)["daily"] == ("active", [])
    time.sleep(0.3)
    assert len(mails_to(server.site, email)) == mails  # no confirmation needed, none sent


def test_leaving_everything_from_the_preference_centre(server: Server) -> None:
    email = "leaver@example.com"
    confirmed(server, email, "daily", "weekly")
    r = post(
        server,
        preferences_url(server, email),
        [("newsletter", ""), ("newsletter", "daily"), ("all", "unsubscribe")],
    )
    assert r.status_code == 200 and "unsubscribed from every newsletter" in r.text
    assert {s for s, _ in subscriptions(server, email).values()} == {"unsubscribed"}
    assert not any(form_state(r.text)[k] for k in ("daily", "weekly", "alerts"))


def test_a_post_that_says_nothing_changes_nothing(server: Server) -> None:
    email = "says-nothing@example.com"
    confirmed(server, email, "weekly")
    for body in (b"", b"List-Unsubscribe=One-Click", b"\xff\xfe"):
        r = server.client.post(
            preferences_url(server, email),
            content=body,
            headers={**SAME_ORIGIN, "content-type": "application/x-www-form-urlencoded"},
        )
        assert r.status_code == 400, body
    bad = server.client.post(
        preferences_url(server, email), data={"newsletter": "nightly"}, headers=SAME_ORIGIN
    )
    assert bad.status_code == 400 and "There is no newsletter" in bad.text
    assert subscriptions(server, email) == {"weekly": ("active", [])}


def test_forged_tampered_and_cross_purpose_preference_tokens_change_nothing(server: Server) -> None:
    email = "pref-tokens@example.com"
    confirmed(server, email, "weekly")
    pid = public_id(server, email)
    good = Signer(SECRET).sign("preferences", pid)
    payload, stamp, signature = good.split(".")
    with mock.patch.object(TimestampSigner, "get_timestamp", lambda self: int(time.time()) - 800 * 86400):
        expired = Signer(SECRET).sign("preferences", pid)
    bad = {
        "forged": Signer("not-our-secret").sign("preferences", pid),
        "tampered": f"{payload}.{stamp}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}",
        "unsubscribe token": Signer(SECRET).sign("unsubscribe", pid, "weekly"),
        "confirm token": Signer(SECRET).sign("confirm", pid),
        "expired": expired,
        "unknown subscriber": Signer(SECRET).sign("preferences", "0" * 24),
        "garbage": "not-a-token",
    }
    for name, token in bad.items():
        for method in ("GET", "POST"):
            r = server.client.request(
                method, f"/preferences/{token}", data={"all": "unsubscribe"}, headers=SAME_ORIGIN
            )
            assert r.status_code == 400 and "not valid or has expired" in r.text, (name, method)
    cross = server.client.post(
        f"/preferences/{good}", data={"all": "unsubscribe"}, headers={"sec-fetch-site": "cross-site"}
    )
    assert cross.status_code == 403
    assert subscriptions(server, email) == {"weekly": ("active", [])}
    log = server.log.read_text()
    assert good not in log and "/preferences/[token]" in log


# -- one-click unsubscribe ---------------------------------------------------------------


def test_one_click_leaves_just_the_newsletter_the_mail_came_from(server: Server) -> None:
    email = "one-click@example.com"
    confirmed(server, email, "daily", "weekly")
    token = Signer(SECRET).sign("unsubscribe", public_id(server, email), "daily")
    page = server.client.get(f"/unsubscribe/{token}")
    assert page.status_code == 200 and "The Morning Briefing" in page.text and "<form" in page.text
    assert server.client.head(f"/unsubscribe/{token}").status_code == 200
    assert subscriptions(server, email)["daily"][0] == "active"
    r = httpx.post(
        server.url(f"/unsubscribe/{token}"),
        content=b"List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200 and "You are unsubscribed" in r.text
    assert "The Week in Korea" in r.text  # what it still receives
    assert subscriptions(server, email) == {"daily": ("unsubscribed", []), "weekly": ("active", [])}
    assert httpx.post(server.url(f"/unsubscribe/{token}")).status_code == 200  # idempotent
    assert subscriptions(server, email) == {"daily": ("unsubscribed", []), "weekly": ("active", [])}


def test_a_link_from_before_newsletters_leaves_everything_when_the_site_has_no_digest(server: Server) -> None:
    email = "old-link@example.com"
    confirmed(server, email, "daily", "weekly")
    old = Signer(OLD_SECRET).sign("unsubscribe", public_id(server, email))  # no newsletter named
    assert server.client.post(f"/unsubscribe/{old}").status_code == 200
    assert {s for s, _ in subscriptions(server, email).values()} == {"unsubscribed"}


def test_a_link_for_a_newsletter_the_site_dropped_leaves_that_one(server: Server) -> None:
    email = "dropped@example.com"
    confirmed(server, email, "weekly")
    token = Signer(SECRET).sign("unsubscribe", public_id(server, email), "gone")
    assert server.client.get(f"/unsubscribe/{token}").status_code == 200
    assert server.client.post(f"/unsubscribe/{token}").status_code == 200
    assert subscriptions(server, email)["weekly"] == ("active", [])
