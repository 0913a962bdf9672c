"""Suppressed addresses and domains are never sent anything: not queued for a new
issue, and skipped at send time when the suppression arrived after the issue was
queued (a complaint while the issue waits for a retry)."""

from __future__ import annotations

import mailbox

import pytest

from publisher import config as configuration
from publisher.store import Store
from tests import pg
from tests.conftest import publish
from tests.mailserver import MailServer, add_subscribers, smtp_site
from tests.newsletter_site import mails_to, newsletter_of, subscribe, with_newsletters

postgresql = pg.postgresql
pg_url = pg.pg_url


def recipients(site) -> list[str]:
    box = mailbox.Maildir(site / "outbox", factory=None, create=False)
    return sorted(str(box.get_message(k)["To"]) for k in box.keys())


def test_a_suppressed_address_or_domain_is_not_queued(site):
    add_subscribers(
        configuration.load(site / "config.toml"), ["a@example.com", "b@example.com", "c@spam.example"]
    )
    publish(site, "suppressions", "add", "a@example.com", "@spam.example")
    publish(site, "now")
    assert recipients(site) == ["b@example.com"]


def test_a_suppression_that_arrives_while_an_issue_waits_wins(site):
    with MailServer() as down:
        port = down.port
    config = smtp_site(site, port, timeout=2)  # nothing listens there now: all stays queued
    add_subscribers(config, ["a@example.com", "b@example.com"])
    first = publish(site, "now", check=False)
    assert first.returncode == 1
    store = Store.open(config.store_url)
    try:
        assert store.ledger.delivery_counts() == {"queued": 2}
    finally:
        store.close()
    publish(site, "suppressions", "add", "a@example.com")
    with MailServer() as server:
        text = (site / "config.toml").read_text().replace(f"port = {port}\n", f"port = {server.port}\n")
        (site / "config.toml").write_text(text)
        publish(site, "now")
        delivered = sorted(r for received in server.handler.received for r in received.rcpt_tos)
    assert delivered == ["b@example.com"]


def test_no_newsletter_sends_to_a_suppressed_address(site):
    with_newsletters(site)
    for reader in ("kept@example.com", "complained@example.com"):
        subscribe(site, reader, "daily", "money", "weekend")
    publish(site, "suppressions", "add", "complained@example.com")
    publish(site, "now")
    got = {newsletter_of(m) for m in mails_to(site, "kept@example.com")}
    assert got == {"daily", "money", "weekend"}
    assert mails_to(site, "complained@example.com") == []


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_an_address_the_smtp_session_bounces_is_on_the_suppression_list(site, backend, request):
    if backend == "postgresql":
        pg.use_store(site, request.getfixturevalue("pg_url"))
    with MailServer() as server:
        server.handler.faults["gone@example.com"] = "550-no-such-user"
        config = smtp_site(site, server.port)
        add_subscribers(config, ["gone@example.com", "ok@example.com"])
        publish(site, "now")
    (line,) = publish(site, "suppressions", "list").stdout.splitlines()
    entry, reason, _, until, detail = line.split("\t")
    assert (entry, reason, until) == ("gone@example.com", "hard_bounce", "until removed")
    assert "5.1.1" in detail
