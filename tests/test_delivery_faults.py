"""Hostile and broken relays (tests/hostile_smtp.py, a raw-socket server on loopback):
a refusal of the message itself or a broken server must never suppress the list,
only a recipient's own failure counts against its address, and no server can keep
``publish now`` running: every reply has a deadline and a size bound."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from publisher import pipeline
from publisher.delivery.replies import classify, enhanced
from publisher.store import Store
from tests.hostile_smtp import HostileSmtp, Script, drip, endless
from tests.mailserver import add_subscribers, ledger_state, smtp_site
from tests.sites import ROOT

READERS = [f"reader{i}@example.com" for i in range(5)]


def publish_now(site, timeout=40):
    """``publish now`` as a real process that must end on its own within ``timeout``."""
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "publisher", "--config", str(site / "config.toml"), "now"],
        capture_output=True,
        text=True,
        cwd=site,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=timeout,
    )
    return result, time.monotonic() - start


def hard_failures(config):
    store = Store.open(config.store_url)
    try:
        with store.engine.connect() as conn:
            return dict(conn.exec_driver_sql("SELECT email, hard_failures FROM subscribers").all())
    finally:
        store.close()


def assert_one_clear_line(result, *fragments):
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("publish: "), result.stderr
    for fragment in fragments:
        assert fragment in line, line


def test_a_reply_line_over_8_kb_blames_nobody_however_often_it_comes(site):
    """smtplib made this a local "500 Line too long", counted as each recipient's
    hard failure: after bounce_limit runs the whole list was bounced."""
    script = Script(rcpt=b"550 " + b"x" * 9000 + b"\r\n")
    with HostileSmtp(script) as server:
        config = smtp_site(site, server.port, bounce_limit=1)
        add_subscribers(config, READERS)
        for _ in range(3):
            result, _ = publish_now(site)
            assert_one_clear_line(result, "broke the protocol", "longer than 8 KB", "5 stay queued")
    counts, statuses = ledger_state(config)
    assert counts == {"queued": 5}
    assert set(statuses.values()) == {"active"}
    assert set(hard_failures(config).values()) == {0}


POLICY_REFUSALS = [
    ("data", "554 5.7.1 Message rejected as spam by content filtering"),
    ("data", "550 5.7.515 Access denied, sending domain does not meet the required authentication level"),
    ("data", "550 5.7.26 Unauthenticated email from news.example.com is not accepted due to DMARC"),
    ("rcpt", "554 5.7.1 <reader0@example.com>: Relay access denied"),
]


@pytest.mark.parametrize(
    "stage, reply",
    [
        *POLICY_REFUSALS,
        ("data", "552 5.3.4 Message size exceeds fixed maximum message size"),
        ("data", "554 Transaction failed"),
        ("mail", "550 5.7.1 Sender address rejected: not owned by user"),
    ],
)
def test_a_refusal_of_the_message_itself_stops_the_run_and_blames_nobody(site, stage, reply):
    """A policy refusal (5.7.x) of the message to a recipient stops sending to that
    recipient's mailbox provider (here every reader's: example.com); any other refusal
    of the message or the sender stops the whole run."""
    with HostileSmtp(Script(**{stage: reply})) as server:
        config = smtp_site(site, server.port, bounce_limit=1)
        add_subscribers(config, READERS)
        report = pipeline.run(config, pipeline.Options())
        script = server.script
        tried = script.contents if stage == "data" else sum(c.startswith("RCPT") for c in script.commands)
        announced = sum(c.startswith("RCPT") for c in script.commands) - script.contents
    code = reply.split()[0]
    if (stage, reply) in POLICY_REFUSALS:
        assert report.delivery.halted == ""
        [paused] = report.delivery.paused
        assert paused.startswith("sending to example.com paused for this run: ") and code in paused
    else:
        assert code in report.delivery.halted and report.delivery.paused == []
    assert report.delivery.failed == 0 and report.delivery.bounced == 0
    assert tried <= 2  # one try per connection, then the run stopped
    assert announced <= 2 and script.received == []  # the next one announced, then dropped unsent
    counts, statuses = ledger_state(config)
    assert counts == {"queued": 5} and set(statuses.values()) == {"active"}
    assert set(hard_failures(config).values()) == {0}
    store = Store.open(config.store_url)
    assert [d.status for d in store.ledger.all_digests()] == ["sending"]  # the next run resumes it
    store.close()


def test_publish_now_says_the_message_was_refused_and_exits_1(site):
    with HostileSmtp(Script(data="554 5.7.1 Message rejected as spam")) as server:
        config = smtp_site(site, server.port)
        add_subscribers(config, READERS)
        result, _ = publish_now(site)
    assert_one_clear_line(
        result, "refused the message itself", "554 5.7.1 Message rejected as spam", "5 stay queued"
    )


def test_only_recipient_failures_count_against_an_address(site):
    rcpt = {
        "gone@example.com": "550 5.1.1 <gone@example.com>: Recipient address rejected: User unknown",
        "nullmx@example.com": "556 5.1.10 Recipient address has null MX",
        "full@example.com": "552 5.2.2 Mailbox full",
        "odd@example.com": "550 4.1.1 contradicts itself",  # a bare 550 to RCPT: counted
        "limited@example.com": "450 4.7.1 Rate limited, try again later",
        "busy@example.com": "421 4.7.0 Too many connections, closing",
        "*": "250 2.1.5 OK",
    }
    with HostileSmtp(Script(rcpt=rcpt)) as server:
        config = smtp_site(site, server.port, bounce_limit=3)
        add_subscribers(config, [a for a in rcpt if a != "*"] + ["fine@example.com"])
        report = pipeline.run(config, pipeline.Options())
        delivered = {r for _, r, _ in server.script.received}
    assert delivered == {"fine@example.com"} and not report.delivery.halted
    _, statuses = ledger_state(config)
    failures = hard_failures(config)
    assert statuses["gone@example.com"] == statuses["nullmx@example.com"] == "bounced"
    assert statuses["full@example.com"] == statuses["odd@example.com"] == "active"
    assert failures["full@example.com"] == failures["odd@example.com"] == 1
    assert failures["limited@example.com"] == failures["busy@example.com"] == 0
    assert statuses["limited@example.com"] == statuses["busy@example.com"] == "active"


def test_each_message_announces_the_next_one_and_waits_one_round_trip(site):
    """With a next message to send, its MAIL, RCPT and DATA go with this one's content
    (RFC 2920): the server has them before it replies to the content, and a
    connection waits for one round trip a message, not two."""
    with HostileSmtp(Script(hold=0.05)) as server:
        config = smtp_site(site, server.port, connections=1)
        add_subscribers(config, READERS)
        report = pipeline.run(config, pipeline.Options())
        script = server.script
    assert report.delivery.sent == 5 and sorted(r for _, r, _ in script.received) == READERS
    assert script.contents == 5 and script.connections == 1
    assert script.early >= 3, script.commands  # of 4 with a next one (a commit running late: fewer)


def test_a_rate_limited_run_announces_nothing(site):
    """Under ``delivery.smtp.rate`` each message waits its turn before it goes: none is
    announced early, so no server is held in DATA while the limit waits."""
    with HostileSmtp(Script(hold=0.05)) as server:
        config = smtp_site(site, server.port, connections=1, smtp_extra="rate = 50\n")
        add_subscribers(config, READERS)
        report = pipeline.run(config, pipeline.Options())
        script = server.script
    assert report.delivery.sent == 5 and script.contents == 5
    assert script.early == 0, script.commands


def test_a_refused_message_lets_the_announced_one_go_on_the_same_connection(site):
    """A refusal of a message's content ends its transaction: the next one, announced
    with it, goes on (no RSET in the middle of it, no new connection)."""
    data = {"reader1@example.com": "552 5.2.2 Mailbox full", "*": "250 2.0.0 queued"}
    with HostileSmtp(Script(data=data, hold=0.01)) as server:
        config = smtp_site(site, server.port, connections=1, bounce_limit=3)
        add_subscribers(config, READERS)
        report = pipeline.run(config, pipeline.Options())
        script = server.script
    delivered = sorted(r for _, r, _ in script.received)
    assert delivered == [r for r in READERS if r != "reader1@example.com"]
    assert report.delivery.sent == 4 and report.delivery.failed == 1 and not report.delivery.halted
    assert script.connections == 1 and "RSET" not in map(str.upper, script.commands), script.commands
    assert hard_failures(config)["reader1@example.com"] == 1


def test_an_announced_message_not_sent_is_dropped_with_the_connection_never_ended_empty():
    """A transport told the next envelope, then given another message (or closed),
    cuts the connection in the announced DATA: the server delivers nothing for it."""
    from publisher.config import SmtpConfig
    from publisher.delivery.smtp import SmtpTransport

    with HostileSmtp() as server:
        transport = SmtpTransport(SmtpConfig(host="127.0.0.1", port=server.port, security="none", timeout=5))
        message = b"Subject: hi\r\n\r\nhello\r\n"
        transport.send(
            "news@x.example", "a@example.com", message, following=lambda: ("news@x.example", "b@example.com")
        )
        transport.send(
            "news@x.example", "c@example.com", message, following=lambda: ("news@x.example", "d@example.com")
        )
        transport.close()
        deadline = time.monotonic() + 5
        while server.script.contents < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)
        script = server.script
    assert [r for _, r, _ in script.received] == ["a@example.com", "c@example.com"]
    assert script.contents == 2 and script.connections == 2
    assert "QUIT" not in script.commands  # a QUIT in DATA would be content


def test_a_greeting_dripped_byte_by_byte_is_given_up_in_bounded_time(site):
    """``timeout`` was per socket read: a byte every 0.05 s kept the run going forever."""
    with HostileSmtp(Script(greeting=drip(b"220 slow.example ESMTP\r\n", 0.05))) as server:
        config = smtp_site(site, server.port, retries=0, timeout=1)
        add_subscribers(config, READERS)
        result, took = publish_now(site)
    assert took < 25
    assert_one_clear_line(result, "no digest was delivered", "no complete reply within 1 s")
    counts, _ = ledger_state(config)
    assert counts == {"queued": 5}


def test_an_endless_ehlo_is_given_up_at_once(site):
    with HostileSmtp(Script(ehlo=endless(b"250-AUTH PLAIN LOGIN\r\n"))) as server:
        config = smtp_site(site, server.port)
        add_subscribers(config, READERS)
        result, took = publish_now(site)
    assert took < 25
    assert_one_clear_line(result, "broke the protocol", "more than 100 lines", "5 stay queued")
    counts, statuses = ledger_state(config)
    assert counts == {"queued": 5} and set(statuses.values()) == {"active"}


@pytest.mark.parametrize(
    "stage, reply, permanent, bounce, halt",
    [
        ("rcpt", "550 5.1.1 user unknown", True, "now", False),
        ("rcpt", "550 5.1.2 bad destination system", True, "now", False),
        ("rcpt", "550 5.1.0 address rejected", True, "count", False),
        ("rcpt", "552 5.2.2 mailbox full", True, "count", False),
        ("rcpt", "550 5.2.1 mailbox disabled", True, "now", False),
        ("rcpt", "550 5.4.1 Recipient address rejected: Access denied", True, "count", False),
        ("rcpt", "550 No such user here", True, "now", False),
        ("rcpt", "553 mailbox name not allowed", True, "count", False),
        ("rcpt", "550 5.7.1 Relaying denied", True, "", True),
        ("rcpt", "550 5.1.8 bad sender's system address", True, "", True),
        ("rcpt", "450 4.2.1 try later", False, "", False),
        ("rcpt", "421 4.7.0 rate limited", False, "", False),
        ("data", "451 4.7.500 Server busy", False, "", False),
        ("data", "550 5.7.515 Access denied", True, "", True),
        ("data", "552 5.2.3 message length exceeds administrative limit", True, "", True),
        ("data", "554 5.6.0 content rejected", True, "", True),
        ("data", "550 5.1.1 user unknown (checked after the message)", True, "now", False),
        ("data", "554 rejected", True, "", True),
        ("mail", "553 5.1.7 bad sender address syntax", True, "", True),
        ("mail", "550 rejected", True, "", True),
        ("mail", "451 4.3.0 try again", False, "", False),
    ],
)
def test_replies_are_read_by_their_enhanced_status_code(stage, reply, permanent, bounce, halt):
    code, text = int(reply[:3]), reply[4:]
    verdict = classify(stage, code, text)
    assert (verdict.permanent, verdict.bounce, verdict.halt) == (permanent, bounce, halt), verdict


def test_enhanced_codes_are_found_only_at_the_start_of_the_text():
    assert enhanced("5.7.515 Access denied") == (5, 7, 515)
    assert enhanced("  4.2.2 over quota") == (4, 2, 2)
    assert enhanced("mailbox 5.1.1 unknown") is None
    assert enhanced("5.1.1234 no") is None
