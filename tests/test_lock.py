"""The site's one lock: a row in the store, renewed while held, taken over once
its holder died; with it, two `publish now` started together send every subscriber
exactly one digest (real processes, a real SMTP server on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from publisher import config as configuration
from publisher.locks import Lock
from publisher.store import Store
from publisher.store.schema import locks
from tests.conftest import ROOT
from tests.test_scheduler import Daemon, configure, plant_missed_digest


class SlowRecorder:
    """An SMTP handler that records each message and takes its time, so two senders
    racing each other would overlap."""

    def __init__(self) -> None:
        self.delay = 0.02  # seconds per message
        self.received: list[tuple[str, str]] = []  # (recipient, Message-ID)
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        await asyncio.sleep(self.delay)
        msg = message_from_bytes(envelope.original_content or envelope.content)
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.received.append((rcpt, msg["Message-ID"]))
        return "250 OK"


@pytest.fixture
def smtp_server():
    handler = SlowRecorder()
    with socket.socket() as probe:  # a free port (aiosmtpd cannot be started on port 0)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def use_smtp(site: Path, port: int) -> None:
    cfg = site / "config.toml"
    text = cfg.read_text(encoding="utf-8").replace('transport = "maildir"', 'transport = "smtp"')
    text += f'\n[delivery.smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
    cfg.write_text(text, encoding="utf-8")


def start_publish(site: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "publisher", "--config", str(site / "config.toml"), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=site,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_two_publish_now_at_once_send_each_subscriber_one_digest(site, run_publish, smtp_server):
    handler, port = smtp_server
    use_smtp(site, port)
    two_publish_now_at_once_send_each_reader_one_digest(site, run_publish, handler)


def two_publish_now_at_once_send_each_reader_one_digest(site, run_publish, handler) -> None:
    """30 subscribers, two `publish now` started together: one copy each, one sender."""
    readers = [f"reader{i}@example.com" for i in range(30)]
    (site / "readers.csv").write_text("email\n" + "\n".join(readers) + "\n", encoding="utf-8")
    run_publish(site, "subscribers", "import", "readers.csv")

    both = [start_publish(site, "now"), start_publish(site, "now")]
    results = [(p.wait(60), *p.communicate()) for p in both]
    for code, out, err in results:
        assert code == 0, f"{out}\n{err}"
    assert sorted(r for r, _ in handler.received) == sorted(readers)
    assert len({mid for _, mid in handler.received}) == len(readers)
    outputs = "".join(out for _, out, _ in results)
    assert outputs.count("30 sent") == 1 and "nothing new to send" in outputs


def test_a_busy_lock_makes_publish_now_wait_then_name_its_holder(site, run_publish):
    cfg = site / "config.toml"
    cfg.write_text(
        cfg.read_text(encoding="utf-8").replace('url = "sqlite:///publisher.db"', "lock_wait = 1"),
        encoding="utf-8",
    )
    store = Store.open(configuration.load(cfg).store_url)
    held = Lock(store.meta, "publish", "an editor's test", ttl=30)
    assert held.try_acquire() is None
    try:
        started = time.monotonic()
        result = run_publish(site, "now", check=False)
        assert result.returncode == 1
        assert time.monotonic() - started >= 1
        assert "locked by an editor's test on" in result.stderr
        assert f"pid {os.getpid()}" in result.stderr
        assert "lock: held by an editor's test" in run_publish(site, "status").stdout
    finally:
        held.release()
    assert "9 new" in run_publish(site, "now").stdout
    store.close()


def test_a_lock_left_by_a_dead_process_is_taken_over_once_expired(site, run_publish):
    store = Store.open(configuration.load(site / "config.toml").store_url)
    with store.engine.begin() as conn:
        conn.execute(
            locks.insert().values(
                name="publish",
                owner="publish now on gone-host pid 4242 [dead]",
                expires=datetime.now(UTC) - timedelta(seconds=1),
            )
        )
    assert "9 new" in run_publish(site, "now").stdout
    assert store.meta.lock_holder("publish") is None
    store.close()


def test_a_held_lock_is_renewed_while_its_holder_works(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    holder = Lock(store.meta, "publish", "a long run", ttl=3)
    rival = Lock(store.meta, "publish", "a rival", ttl=3)
    assert holder.try_acquire() is None
    time.sleep(4.5)  # past the first expiry: only the heartbeat keeps it
    assert rival.try_acquire() == holder.owner
    assert not holder.lost.is_set()
    holder.release()
    assert rival.try_acquire() is None
    rival.release()
    assert store.meta.lock_holder("publish") is None
    store.close()


def test_a_run_killed_mid_way_leaves_a_lock_that_expires(site, run_publish):
    cfg = site / "config.toml"
    cfg.write_text(
        cfg.read_text(encoding="utf-8").replace('url = "sqlite:///publisher.db"', "lease = 3\nlock_wait = 0"),
        encoding="utf-8",
    )
    store = Store.open(configuration.load(cfg).store_url)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from publisher.store import Store\n"
            "from publisher.locks import Lock\n"
            "lock = Lock(Store.open(sys.argv[1]).meta, 'publish', 'a doomed run', ttl=3)\n"
            "assert lock.try_acquire() is None\n"
            "print('held', flush=True)\n"
            "time.sleep(60)\n",
            configuration.load(cfg).store_url,
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    busy = run_publish(site, "now", check=False)
    assert busy.returncode == 1 and "a doomed run" in busy.stderr
    proc.kill()
    proc.wait()
    time.sleep(3.2)
    assert "9 new" in run_publish(site, "now").stdout
    store.close()


def test_sigterm_during_a_digest_finishes_the_message_and_the_next_run_resumes(
    site, run_publish, smtp_server
):
    handler, port = smtp_server
    handler.delay = 0.1
    use_smtp(site, port)
    configure(site, digest='"0 0 1 1 *"')
    readers = [f"reader{i}@example.com" for i in range(40)]
    (site / "readers.csv").write_text("email\n" + "\n".join(readers) + "\n", encoding="utf-8")
    run_publish(site, "subscribers", "import", "readers.csv")
    run_publish(site, "now", "--no-email")
    plant_missed_digest(site, timedelta(minutes=1))
    daemon = Daemon(site)
    try:
        wait = time.monotonic() + 20
        while len(handler.received) < 3 and time.monotonic() < wait:
            time.sleep(0.02)
        code, took = daemon.stop()
    finally:
        daemon.kill()
    assert code == 0, daemon.log
    assert took < 3
    sent_first = len(handler.received)
    assert 3 <= sent_first < len(readers), daemon.log
    assert "stopped before it finished" in daemon.log
    assert "interrupted" in run_publish(site, "status").stdout
    assert f"{len(readers) - sent_first} sent" in run_publish(site, "now").stdout
    assert sorted(r for r, _ in handler.received) == sorted(readers)
