"""Confirmation mails go through the store's outbox: every "check your inbox" answer
is committed before it is given, and a sender in ``publish serve`` or ``publish run``
sends it, after a kill -9 too, exactly once, retried with backoff, and a stalled
SMTP server cannot hold up SIGTERM. Real processes, real SQLite, real servers."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx

from publisher import config as configuration
from publisher.signup import Signup
from publisher.store import Store
from publisher.tokens import Signer
from tests.hostile_smtp import HostileSmtp, Script, drip
from tests.mailserver import MailServer, smtp_site
from tests.webserver import Server, env_for, free_port, make_site, messages, wait_for_mails

MANY = 300


def outbox_counts(site: Path) -> dict[str, int]:
    store = Store.open(f"sqlite:///{site / 'publisher.db'}")
    try:
        return store.outbox.counts()
    finally:
        store.close()


def sign_up(base: str, email: str) -> int:
    return httpx.post(base + "/subscribe", data={"email": email}, timeout=30).status_code


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
    try:
        deadline = time.monotonic() + 90
        while len(list((site / "outbox" / "new").iterdir())) < MANY and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)  # anything sent twice would be there by now
        sent = Counter(str(m["To"]) for m in messages(site))
        per_address = {e: sent[e] for e in emails}
    finally:
        srv.stop()
    assert set(per_address.values()) == {1}, (before, {e: n for e, n in per_address.items() if n != 1})
    assert outbox_counts(site) == {"sent": MANY}
    print(f"{before} of {MANY} mails were out before the kill; the restart sent the rest")


def test_a_stalled_smtp_server_does_not_hold_up_sigterm_and_the_mail_is_kept(tmp_path: Path) -> None:
    port = free_port()
    site = make_site(tmp_path / "site", port)
    with HostileSmtp(Script(greeting=drip(b"220 stalled.example ESMTP\r\n", 0.5))) as hostile:
        smtp_site(site, hostile.port, timeout=60)
        srv = Server(site, port)
        assert sign_up(srv.base, "patient@example.com") == 200
        deadline = time.monotonic() + 10
        while hostile.script.connections == 0:
            assert time.monotonic() < deadline, "the sender never connected"
            time.sleep(0.05)
        start = time.monotonic()
        srv.proc.terminate()
        srv.proc.wait(30)
        took = time.monotonic() - start
        srv.stop()
    assert took < 10, f"SIGTERM took {took:.1f} s"
    assert "Traceback" not in srv.log.read_text(), srv.log.read_text()
    assert outbox_counts(site) == {"sending": 1}  # interrupted, not lost
    with MailServer() as good:
        text = (site / "config.toml").read_text()
        (site / "config.toml").write_text(text.replace(f"port = {hostile.port}", f"port = {good.port}"))
        srv = Server(site, port)
        try:
            deadline = time.monotonic() + 15
            while not good.handler.to("patient@example.com") and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(0.5)
        finally:
            srv.stop()
        assert len(good.handler.to("patient@example.com")) == 1
    assert outbox_counts(site) == {"sent": 1}


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
            while not server.handler.to("retry@example.com") and time.monotonic() - start < 15:
                time.sleep(0.05)
            took = time.monotonic() - start
            time.sleep(0.5)
        finally:
            srv.stop()
        assert len(server.handler.to("retry@example.com")) == 1
        assert server.handler.tried["retry@example.com"] == 2
    assert took >= 0.5  # not before the backoff
    assert outbox_counts(site) == {"sent": 1}


def test_publish_run_sends_the_mails_promised_while_no_server_ran(tmp_path: Path) -> None:
    site = make_site(tmp_path / "site", free_port())
    text = (site / "config.toml").read_text()
    (site / "config.toml").write_text(text.replace('collect = "*/15 * * * *"', 'collect = ""'))
    config = configuration.load(site / "config.toml")
    store = Store.open(config.store_url)
    try:
        signup = Signup(config, store, Signer("run-test-secret"))
        for i in range(3):
            signup.enqueue(f"waiting{i}@example.com", datetime.now(UTC))
    finally:
        store.close()
    proc = subprocess.Popen(
        [sys.executable, "-m", "publisher", "--config", str(site / "config.toml"), "run"],
        cwd=site,
        env=env_for(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
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
    text = (site / "config.toml").read_text()
    text = text.replace('collect = "*/15 * * * *"', 'collect = ""')
    text = text.replace("[delivery]\n", '[delivery]\nreturn_path = "bounces@news.example.com"\n')
    (site / "config.toml").write_text(text)
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
    proc = subprocess.Popen(
        [sys.executable, "-m", "publisher", "--config", str(site / "config.toml"), "run"],
        cwd=site,
        env=env_for(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        (mail,) = wait_for_mails(site, "fine@example.com", 1, timeout=20)
        deadline = time.monotonic() + 10
        while outbox_counts(site).get("failed") != 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert outbox_counts(site) == {"sent": 1, "failed": 2}
    assert [str(m["To"]) for m in messages(site)] == ["fine@example.com"]
    assert re.fullmatch(r"<bounces\+[a-z2-7]{32}@news\.example\.com>", str(mail["Return-Path"]))
