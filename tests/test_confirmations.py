"""Confirmation mails go through the store's outbox: every "check your inbox" answer
is committed before it is given, and a sender in ``publish serve`` or ``publish run``
sends it, after a kill -9 too, exactly once, retried with backoff, and a stalled
SMTP server cannot hold up SIGTERM. Real processes, real SQLite, real servers."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from publisher import config as configuration
from publisher.signup import Signup
from publisher.store import Store
from publisher.tokens import Signer
from tests.hostile_smtp import HostileSmtp, Script, drip
from tests.mailserver import MailServer, smtp_site
from tests.sites import edit_config, start_publish
from tests.waiting import wait_until
from tests.webserver import (
    Server,
    confirmations_settled,
    env_for,
    free_port,
    make_site,
    messages,
    outbox_counts,
    wait_for_mails,
)

MANY = 100  # signups answered before the kill: enough that some mails are still queued then


def sign_up(base: str, email: str) -> int:
    return httpx.post(base + "/subscribe", data={"email": email}, timeout=30).status_code


@pytest.mark.slow
def test_every_answer_survives_a_kill_and_gets_exactly_one_mail(tmp_path: Path) -> None:
    port = free_port()
    site = make_site(tmp_path / "site", port, f"requests_per_client = {MANY * 2}\n")
    emails = [f"signup{i}@example.com" for i in range(MANY)]
    srv = Server(site, port)
    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(pool.map(lambda e: sign_up(srv.base, e), emails))
    os.kill(srv.proc.pid, signal.SIGKILL)  # right after the last answer
    srv.proc.wait()
    srv.stop()
    assert codes == [200] * MANY
    before = len(messages(site))
    assert sum(outbox_counts(site).values()) == MANY  # every promise was in the store first
    srv = Server(site, port)
    try:  # the sender is done when the store has nothing left to send
        wait_until(lambda: outbox_counts(site) == {"sent": MANY}, 90, "every confirmation sent")
        sent = Counter(str(m["To"]) for m in messages(site))
        per_address = {e: sent[e] for e in emails}
    finally:
        srv.stop()
    assert set(per_address.values()) == {1}, (before, {e: n for e, n in per_address.items() if n != 1})
    assert outbox_counts(site) == {"sent": MANY}
    print(f"{before} of {MANY} mails were out before the kill; the restart sent the rest")


@pytest.mark.slow
def test_a_stalled_smtp_server_does_not_hold_up_sigterm_and_the_mail_is_kept(tmp_path: Path) -> None:
    port = free_port()
    site = make_site(tmp_path / "site", port)
    with HostileSmtp(Script(greeting=drip(b"220 stalled.example ESMTP\r\n", 0.5))) as hostile:
        smtp_site(site, hostile.port, timeout=60)
        srv = Server(site, port)
        assert sign_up(srv.base, "patient@example.com") == 200
        wait_until(lambda: hostile.script.connections > 0, 10, "the sender connecting")
        start = time.monotonic()
        srv.proc.terminate()
        srv.proc.wait(30)
        took = time.monotonic() - start
        srv.stop()
    assert took < 10, f"SIGTERM took {took:.1f} s"
    assert "Traceback" not in srv.log.read_text(), srv.log.read_text()
    assert outbox_counts(site) == {"sending": 1}  # interrupted, not lost
    with MailServer() as good:
        edit_config(site, f"port = {hostile.port}", f"port = {good.port}")
        srv = Server(site, port)
        try:
            wait_until(lambda: outbox_counts(site) == {"sent": 1}, 15, "the kept mail sent")
        finally:
            srv.stop()
        assert len(good.handler.to("patient@example.com")) == 1


def test_a_temporary_failure_is_retried_with_backoff(tmp_path: Path) -> None:
    port = free_port()
    site = make_site(tmp_path / "site", port)
    with MailServer() as server:
        server.handler.faults["retry@example.com"] = "451-once"
        smtp_site(site, server.port, retry_delay=0.5)
        srv = Server(site, port)
        try:
            start = time.monotonic()
            assert sign_up(srv.base, "retry@example.com") == 200
            wait_until(lambda: server.handler.to("retry@example.com"), 15, "the retried mail received")
            took = time.monotonic() - start
            wait_until(lambda: outbox_counts(site) == {"sent": 1}, 15, "the mail recorded sent")
        finally:
            srv.stop()
        assert len(server.handler.to("retry@example.com")) == 1
        assert server.handler.tried["retry@example.com"] == 2
    assert took >= 0.5  # not before the backoff


def test_publish_run_sends_the_mails_promised_while_no_server_ran(tmp_path: Path) -> None:
    site = make_site(tmp_path / "site", free_port())
    edit_config(site, 'collect = "*/15 * * * *"', 'collect = ""')
    config = configuration.load(site / "config.toml")
    store = Store.open(config.store_url)
    try:
        signup = Signup(config, store, Signer("run-test-secret"))
        for i in range(3):
            signup.enqueue(f"waiting{i}@example.com", datetime.now(UTC))
    finally:
        store.close()
    proc = start_publish(site, "run", env=env_for(), stderr=subprocess.STDOUT, text=False)
    try:
        for i in range(3):
            assert len(wait_for_mails(site, f"waiting{i}@example.com", 1, timeout=20)) == 1
    finally:
        proc.terminate()
        out = proc.communicate(timeout=30)[0].decode()
    assert proc.returncode == 0, out
    assert outbox_counts(site) == {"sent": 3}


def test_a_suppressed_address_or_domain_gets_no_confirmation_and_the_rest_a_verp_return_path(
    tmp_path: Path,
) -> None:
    site = make_site(tmp_path / "site", free_port())
    edit_config(site, 'collect = "*/15 * * * *"', 'collect = ""')
    edit_config(site, "[delivery]\n", '[delivery]\nreturn_path = "bounces@news.example.com"\n')
    config = configuration.load(site / "config.toml")
    store = Store.open(config.store_url)
    try:
        store.feedback.suppress("blocked@example.com", "complaint", "", datetime.now(UTC))
        store.feedback.suppress("@spam.example", "manual", "", datetime.now(UTC))
        signup = Signup(config, store, Signer("run-test-secret"))
        for address in ("blocked@example.com", "anyone@spam.example", "fine@example.com"):
            signup.enqueue(address, datetime.now(UTC))
    finally:
        store.close()
    proc = start_publish(site, "run", env=env_for(), stderr=subprocess.STDOUT, text=False)
    try:
        (mail,) = wait_for_mails(site, "fine@example.com", 1, timeout=20)
        wait_until(lambda: confirmations_settled(site), 10, "every confirmation sent or refused")
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert outbox_counts(site) == {"sent": 1, "failed": 2}
    assert [str(m["To"]) for m in messages(site)] == ["fine@example.com"]
    assert re.fullmatch(r"<bounces\+[a-z2-7]{32}@news\.example\.com>", str(mail["Return-Path"]))
