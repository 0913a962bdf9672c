"""The return path and ``publish bounces``: digests go out over SMTP to a relay that
accepts everything and then bounces some of it with real RFC 3464 DSNs to our VERP
address; ``publish bounces`` reads them from a Maildir or a mail pipe (stdin)."""

from __future__ import annotations

import mailbox
import os
import re
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from publisher import config as configuration
from publisher.messages import Messages
from publisher.store import Store
from tests import imap_server as imap
from tests.bounce_relay import BounceRelay, dsn
from tests.conftest import ROOT, publish
from tests.mailserver import add_subscribers, smtp_site

RETURN_PATH = "bounces@news.example.com"
FATES = {
    "gone@example.com": ("5.1.1", "550 5.1.1 <gone@example.com>: Recipient address rejected: User unknown"),
    "full@example.com": ("5.2.2", "552 5.2.2 <full@example.com>: Mailbox full"),
    "spam@example.com": ("5.7.1", "550 5.7.1 Message rejected as spam"),
}
READERS = ["reader@example.com", *FATES]
imap_server = imap.imap_server
VERP = re.compile(r"^bounces\+([a-z2-7]{32})@news\.example\.com$")


def state(config) -> tuple[dict[str, str], list[str]]:
    store = Store.open(config.store_url)
    try:
        statuses = {s.email: s.status for s in store.subscribers.all()}
        return statuses, [s.entry for s in store.feedback.suppressions()]
    finally:
        store.close()


@pytest.fixture
def bounced(site, tmp_path):
    """A digest sent through the bouncing relay; its DSNs wait in a Maildir."""
    returns = tmp_path / "returns"
    with BounceRelay(returns, FATES) as relay:
        config = smtp_site(site, relay.port, return_path=RETURN_PATH)
        add_subscribers(config, READERS)
        publish(site, "now")
        accepted = relay.accepted
    return config, returns, accepted


def test_every_message_has_its_own_signed_return_path_naming_no_address(bounced):
    config, _, accepted = bounced
    assert sorted(rcpt for _, rcpt in accepted) == sorted(READERS)  # the relay accepted every one
    senders = [mail_from for mail_from, _ in accepted]
    assert all(VERP.match(s) and len(s.split("@")[0]) <= 64 for s in senders), senders
    assert len(set(senders)) == len(READERS)
    assert not any(reader.split("@")[0] in s for s in senders for reader in READERS)
    store = Store.open(config.store_url)
    try:
        messages = Messages.for_site(config, store)
        for mail_from, rcpt in accepted:
            issue_id, subscriber_id = messages.delivery_named(mail_from)
            assert store.subscribers.get(rcpt).id == subscriber_id and issue_id >= 1
    finally:
        store.close()


def test_publish_bounces_reads_the_dsns_of_a_maildir_once(bounced, site):
    config, returns, _ = bounced
    assert len(os.listdir(returns / "new")) == 3
    result = publish(site, "bounces", "--maildir", str(returns))
    assert "3 mails read, 3 events recorded" in result.stdout, result.stdout
    assert "suppressed gone@example.com" in result.stdout
    statuses, suppressed = state(config)
    assert statuses == {
        "reader@example.com": "active",
        "gone@example.com": "bounced",  # 5.1.1: suppressed at once, its subscription ended
        "full@example.com": "active",  # 5.2.2: one soft bounce counted
        "spam@example.com": "active",  # 5.7.1: our message's problem, never the reader's
    }
    assert suppressed == ["gone@example.com"]
    assert os.listdir(returns / "new") == []
    assert all(name.endswith(":2,S") for name in os.listdir(returns / "cur"))
    again = publish(site, "bounces", "--maildir", str(returns))
    assert "0 mails read" in again.stdout


@pytest.mark.slow
def test_the_same_dsn_through_the_mail_pipe_twice_counts_once(bounced, site):
    config, returns, _ = bounced
    box = mailbox.Maildir(returns, factory=None, create=False)
    gone = next(bytes(m) for m in (box.get_bytes(k) for k in box.keys()) if b"gone@example.com>:" in m)
    first = pipe(site, gone)
    second = pipe(site, gone)
    assert first.returncode == 0 and "1 event recorded" in first.stdout
    assert second.returncode == 0 and "0 events recorded, 1 already known" in second.stdout
    assert state(config)[1] == ["gone@example.com"]
    store = Store.open(config.store_url)
    try:
        assert len(store.feedback.events()) == 1
    finally:
        store.close()


def test_a_forged_return_path_token_is_ignored(bounced, site):
    """A DSN to a return path whose token was altered names no delivery: only the
    recipient the DSN itself names is blamed, not the subscriber the forger picked."""
    config, returns, accepted = bounced
    mail_from = next(m for m, rcpt in accepted if rcpt == "reader@example.com")
    token = VERP.match(mail_from).group(1)
    forged = mail_from.replace(token, token[:-1] + ("a" if token[-1] != "a" else "b"))
    report = dsn(forged, "nobody@elsewhere.example", "5.1.1", "550 5.1.1 unknown", b"Subject: x\n\n")
    pipe(site, report)
    statuses, suppressed = state(config)
    assert statuses["reader@example.com"] == "active"
    assert suppressed == ["nobody@elsewhere.example"]


def test_a_dsn_that_only_the_return_path_identifies_still_names_the_delivery(bounced, site):
    config, _, accepted = bounced
    mail_from = next(m for m, rcpt in accepted if rcpt == "reader@example.com")
    report = dsn(mail_from, "", "5.1.1", "550 5.1.1 unknown", b"Subject: x\n\n").replace(
        b"Final-Recipient: rfc822; \n", b""
    )
    report = report.replace(b"Original-Recipient: rfc822;\n", b"")
    result = pipe(site, report)
    assert "suppressed reader@example.com" in result.stdout, result.stdout + result.stderr
    assert state(config)[0]["reader@example.com"] == "bounced"


ARF = """\
From: Feedback Loop <fbl@mail.example.net>
To: {to}
Subject: Complaint about a message
Date: Fri, 04 Dec 2026 09:00:00 +0000
Message-ID: <arf-1@mail.example.net>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="arf"

--arf
Content-Type: text/plain

This is an email abuse report for an email message received from IP 192.0.2.1.
--arf
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: SomeGenerator/1.0
Version: 1
Original-Mail-From: <{to}>
Arrival-Date: Fri, 04 Dec 2026 08:00:00 +0000
Reported-Domain: news.example.com

--arf
Content-Type: text/rfc822-headers

From: Korea JoongAng Daily <digest@news.example.com>
To: {rcpt}
Subject: Korea JoongAng Daily
Message-ID: {message_id}

--arf--
"""


def test_an_arf_complaint_suppresses_and_unsubscribes_even_with_the_recipient_redacted(bounced, site):
    config, _, accepted = bounced
    store = Store.open(config.store_url)
    try:
        public_id = store.subscribers.get("reader@example.com").public_id
    finally:
        store.close()
    report = ARF.format(
        to="fbl@news.example.com",
        rcpt="redacted@redacted",
        message_id=f"<2026-12-04.{public_id}@news.example.com>",
    )
    result = pipe(site, report.encode())
    assert "suppressed reader@example.com" in result.stdout, result.stdout + result.stderr
    statuses, suppressed = state(config)
    assert statuses["reader@example.com"] == "unsubscribed" and "reader@example.com" in suppressed


QMAIL = """\
From: MAILER-DAEMON@mx.example.org
To: {to}
Subject: failure notice
Date: Fri, 04 Dec 2026 09:00:00 +0000
Message-ID: <qmail-1@mx.example.org>

Hi. This is the qmail-send program at mx.example.org.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<{rcpt}>:
Sorry, no mailbox here by that name. (#5.1.1)

--- Below this line is a copy of the message.

Subject: Korea JoongAng Daily
"""


def test_a_non_standard_qmail_bounce_is_read_by_flufl_bounce(bounced, site):
    config, _, _ = bounced
    report = QMAIL.format(to=RETURN_PATH, rcpt="full@example.com")
    result = pipe(site, report.encode())
    assert "1 event recorded" in result.stdout, result.stdout + result.stderr
    assert "full@example.com" in state(config)[1]


def test_mail_it_cannot_read_is_kept_and_reported_never_lost(bounced, site):
    config, returns, _ = bounced
    letter = b"From: A Reader <reader@example.org>\nTo: bounces@news.example.com\nSubject: hello?\n\nIs anyone there?\n"
    piped = pipe(site, letter)
    assert piped.returncode == 0
    assert "kept unread: neither a bounce nor a complaint report" in piped.stderr
    kept = mailbox.Maildir(site / "bounces-unread", factory=None, create=False)
    assert [kept.get_bytes(k) for k in kept.keys()] == [letter]
    mailbox.Maildir(returns, factory=None, create=False).add(letter)
    result = publish(site, "bounces", "--maildir", str(returns))
    assert "1 kept unread" in result.stdout
    flagged = [n for n in os.listdir(returns / "cur") if n.endswith(":2,F")]
    assert len(flagged) == 1 and (returns / "cur" / flagged[0]).read_bytes() == letter


def test_an_out_of_office_reply_is_ignored_not_kept(bounced, site):
    reply = (
        b"From: reader@example.com\nTo: bounces@news.example.com\nSubject: Out of Office: Korea JoongAng Daily\n"
        b"Auto-Submitted: auto-replied\n\nI am away until Monday.\n"
    )
    result = pipe(site, reply)
    assert "ignored: an automatic reply" in result.stderr and "0 kept unread" in result.stdout


def test_a_store_that_cannot_be_written_makes_the_mail_server_try_again(bounced, site):
    config, returns, _ = bounced
    text = (site / "config.toml").read_text()
    (site / "config.toml").write_text(text.replace("[store]\n", "[store]\nlock_wait = 0.2\n"))
    box = mailbox.Maildir(returns, factory=None, create=False)
    report = box.get_bytes(box.keys()[0])
    holder = sqlite3.connect(str(site / "publisher.db"), isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        result = pipe(site, report, check=False)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.returncode == 75, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "try again later" in result.stderr
    assert pipe(site, report).returncode == 0  # the retry records it


def test_without_a_return_path_the_envelope_sender_is_the_from_address(site, tmp_path):
    with BounceRelay(tmp_path / "returns", {}) as relay:
        config = smtp_site(site, relay.port)
        add_subscribers(config, ["reader@example.com"])
        publish(site, "now")
        assert [m for m, _ in relay.accepted] == ["digest@news.example.com"]


def test_the_maildir_transport_writes_the_return_path(site):
    text = (site / "config.toml").read_text()
    (site / "config.toml").write_text(
        text.replace('maildir = "outbox"\n', f'maildir = "outbox"\nreturn_path = "{RETURN_PATH}"\n')
    )
    add_subscribers(configuration.load(site / "config.toml"), ["reader@example.com"])
    publish(site, "now")
    box = mailbox.Maildir(site / "outbox", factory=None, create=False)
    first = box.get_bytes(box.keys()[0]).split(b"\n", 1)[0].decode()
    assert re.fullmatch(r"Return-Path: <bounces\+[a-z2-7]{32}@news\.example\.com>", first), first


@pytest.mark.parametrize(
    "value, problem",
    [
        ("Bounces <bounces@news.example.com>", "must be a bare address"),
        ("bounces+x@news.example.com", "without '+'"),
        ("b" * 40 + "@news.example.com", "at most 31 characters"),
        ("not an address", "must be a bare address"),
    ],
)
def test_a_return_path_that_cannot_carry_a_token_is_one_configuration_line(site, value, problem):
    text = (site / "config.toml").read_text()
    (site / "config.toml").write_text(
        text.replace('maildir = "outbox"\n', f'maildir = "outbox"\nreturn_path = "{value}"\n')
    )
    result = publish(site, "feeds", check=False)
    assert result.returncode == 2 and "delivery.return_path" in result.stderr and problem in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_bounces_needs_a_mail_a_maildir_or_imap(site):
    result = publish(site, "bounces", "--maildir", str(site / "nothing-here"), check=False)
    assert result.returncode == 1 and "is not a Maildir" in result.stderr
    result = publish(site, "bounces", "--imap", check=False)
    assert result.returncode == 2 and "bounces.imap_host" in result.stderr


def pipe(site: Path, mail: bytes, check: bool = True, env: dict[str, str] | None = None) -> Result:
    """``publish bounces`` as a mail server's pipe runs it: the mail on stdin."""
    done = subprocess.run(
        [sys.executable, "-m", "publisher", "--config", str(site / "config.toml"), "bounces"],
        input=mail,
        capture_output=True,
        cwd=site,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        timeout=120,
    )
    result = Result(done.returncode, done.stdout.decode(), done.stderr.decode())
    if check and result.returncode != 0:
        raise AssertionError(
            f"publish bounces failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.mark.slow
def test_publish_bounces_reads_an_imap_folder_over_tls_and_loses_nothing(bounced, site, imap_server):
    config, returns, _ = bounced
    box = mailbox.Maildir(returns, factory=None, create=False)
    for key in sorted(box.keys()):
        imap_server.append("Bounces", box.get_bytes(key))
    letter = b"From: A Reader <reader@example.org>\nSubject: hello?\n\nIs anyone there?\n"
    imap_server.append("Bounces", letter)
    with (site / "config.toml").open("a") as fh:
        fh.write(
            f'\n[bounces]\nimap_host = "127.0.0.1"\nimap_port = {imap_server.port}\nimap_security = "ssl"\n'
            f'imap_user = "{imap_server.user}"\nimap_folder = "Bounces"\n'
        )
    env = {"SSL_CERT_FILE": str(imap_server.cert), "PUBLISHER_IMAP_PASSWORD": imap_server.password}
    result = publish(site, "bounces", "--imap", env=env)
    assert "4 mails read, 3 events recorded" in result.stdout and "1 kept unread" in result.stdout, (
        result.stdout
    )
    assert "imap Bounces uid 4: kept unread" in result.stderr
    assert state(config)[1] == ["gone@example.com"]
    flags = imap_server.flags("Bounces")
    assert len(flags) == 4  # nothing deleted
    assert all("\\Seen" in f for f in flags[:3]) and "\\Flagged" in flags[3] and "\\Seen" not in flags[3]
    again = publish(site, "bounces", "--imap", env=env)
    assert "0 mails read" in again.stdout
    wrong = publish(site, "bounces", "--imap", env={**env, "PUBLISHER_IMAP_PASSWORD": "wrong"}, check=False)
    assert wrong.returncode == 1 and len(wrong.stderr.strip().splitlines()) == 1
    assert "cannot log in to the IMAP server 127.0.0.1" in wrong.stderr


def test_publish_bounces_reads_imap_over_starttls(site, imap_server):
    imap_server.append("INBOX", QMAIL.format(to=RETURN_PATH, rcpt="gone@example.com").encode())
    with (site / "config.toml").open("a") as fh:
        fh.write(
            f'\n[bounces]\nimap_host = "127.0.0.1"\nimap_port = {imap_server.starttls_port}\n'
            f'imap_security = "starttls"\nimap_user = "{imap_server.user}"\n'
        )
    env = {"SSL_CERT_FILE": str(imap_server.cert), "PUBLISHER_IMAP_PASSWORD": imap_server.password}
    result = publish(site, "bounces", "--imap", env=env)
    assert "1 mail read, 1 event recorded" in result.stdout and "suppressed gone@example.com" in result.stdout
    assert imap_server.flags("INBOX") == [{"\\Seen"}]
