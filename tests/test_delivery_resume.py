"""A real ``publish now`` process killed with SIGKILL while it sends, then run again:
every subscriber ends up with exactly one copy, plus at most the ones in flight."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter

from publisher import config as configuration
from publisher.delivery.sender import IN_FLIGHT
from tests.mailserver import MailServer, add_subscribers, ledger_state, smtp_site
from tests.sites import start_publish

CONNECTIONS = 2
WORKERS = 2  # sender processes, each with CONNECTIONS: killed with their parent


def settled(received: list) -> int:
    """How many messages the server holds once those in flight when the senders died
    have had their reply (the server takes ``delay`` before each): unchanged for 0.2 s."""
    while True:
        seen = len(received)
        time.sleep(0.2)
        if len(received) == seen:
            return seen


def test_killed_send_is_resumed_without_skips_or_extra_copies(site, run_publish):
    with MailServer() as server:
        config = smtp_site(site, server.port, workers=WORKERS)
        assert config.delivery.smtp.connections == CONNECTIONS
        addresses = [f"reader{i:03}@example.com" for i in range(300)]
        add_subscribers(config, addresses)
        server.handler.delay = 0.01  # slow enough to be caught mid-send
        proc = start_publish(site, "now", stdout=subprocess.DEVNULL, text=False)
        deadline = time.monotonic() + 60
        while len(server.handler.received) < 60:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        before = settled(server.handler.received)
        assert before < len(addresses), "the run finished before it was killed"
        counts, _ = ledger_state(configuration.load(site / "config.toml"))
        assert counts.get("queued", 0) > 0 and counts.get("sent", 0) > 0

        server.handler.delay = 0
        report = json.loads(run_publish(site, "now", "--json").stdout)
        assert report["digest"] is None  # the killed run's digest is resumed, not a new one
        copies = Counter(r.rcpt_tos[0] for r in server.handler.received)
        assert set(copies) == set(addresses)  # nobody skipped
        extra = sum(copies.values()) - len(addresses)
        assert extra <= WORKERS * CONNECTIONS * IN_FLIGHT, (
            f"{extra} duplicates: more than the messages in flight"
        )
        assert report["delivery"]["sent"] + before - extra == len(addresses)
        counts, _ = ledger_state(configuration.load(site / "config.toml"))
        assert counts == {"sent": len(addresses)}


def test_progress_bar_on_a_terminal_only(site, run_publish):
    import pty

    add_subscribers(configuration.load(site / "config.toml"), [f"r{i}@example.com" for i in range(30)])
    main, secondary = pty.openpty()
    proc = start_publish(site, "now", env={"TERM": "xterm", "COLUMNS": "100"}, stderr=secondary, text=False)
    os.close(secondary)
    terminal = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:
            break
        if not chunk:
            break
        terminal += chunk
    out = proc.communicate(timeout=60)[0].decode()
    os.close(main)
    assert proc.returncode == 0
    assert b"sending" in terminal and b"30/30" in terminal
    assert b"collecting" in terminal  # files read, counted while collecting
    assert "delivered: 30 sent" in out and "sending" not in out  # stdout is not a terminal
    quiet = run_publish(site, "now")
    assert quiet.stderr == ""


def test_plain_log_lines_instead_of_a_bar_when_verbose_in_a_log(site, run_publish):
    add_subscribers(configuration.load(site / "config.toml"), [f"r{i}@example.com" for i in range(5)])
    result = run_publish(site, "-v", "now")
    assert "INFO: digest: 5 of 5 deliveries done" in result.stderr
    assert "\x1b[" not in result.stderr  # no terminal control codes in a log
