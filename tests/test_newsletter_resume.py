"""Exactly once per newsletter, with real processes, on SQLite and on PostgreSQL: a
``publish now`` sending several newsletters is killed with SIGKILL and run again;
readers leave one newsletter while its issue goes out."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime

import pytest

from publisher import audience
from publisher import config as configuration
from publisher.delivery.sender import IN_FLIGHT
from publisher.store import Store
from tests import pg
from tests.conftest import ROOT
from tests.mailserver import MailServer, smtp_site
from tests.newsletter_site import with_newsletters

postgresql = pg.postgresql
CONNECTIONS = 2  # smtp_site's [delivery.smtp] connections, in each sender process
WORKERS = 2  # sender processes (delivery.workers): at most WORKERS x CONNECTIONS x IN_FLIGHT in flight
STORY = "Kospi rebounds as chipmakers lead gains"  # untagged: in daily only
CHIP = "Chipmaker plans new packaging plant in Cheonan"  # Business: in daily and money


@pytest.fixture(params=["sqlite", "postgresql"])
def store_kind(request, site):
    if request.param == "postgresql":
        pg.use_store(site, request.getfixturevalue("postgresql").createdb())
    return request.param


def wanted(i: int) -> list[str]:
    """Reader i's newsletters: every reader gets daily; two in three money; one in three weekend."""
    return ["daily"] + (["money"] if i % 3 else []) + (["weekend"] if i % 3 == 0 else [])


def import_readers(site, count: int) -> dict[str, list[str]]:
    """``count`` readers imported from a CSV file with a ``newsletters`` column."""
    readers = {f"reader{i:03}@example.com": wanted(i) for i in range(count)}
    rows = "email,name,newsletters\n" + "".join(f"{a},,{' '.join(n)}\n" for a, n in readers.items())
    config = configuration.load(site / "config.toml")
    with Store.of(config) as store:
        report = audience.import_csv(store, rows, "readers.csv", config=config)
    assert not report.problems, report.problems
    return readers


def start_now(site) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "publisher", "--config", str(site / "config.toml"), "now"],
        cwd=site,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def wait_until(proc, condition, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None or condition(), proc.stderr.read().decode()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def newsletter_of(data: bytes) -> str:
    return re.search(rb"List-Id: [^\r\n]*<([a-z]+)\.", data).group(1).decode()


def delivered(server) -> Counter[tuple[str, str]]:
    with server.handler.lock:
        return Counter((r.rcpt_tos[0], newsletter_of(r.data)) for r in server.handler.received)


def test_killed_mid_send_of_several_newsletters_then_rerun(site, run_publish, store_kind):
    with MailServer() as server:
        smtp_site(site, server.port, workers=WORKERS)
        with_newsletters(site)
        readers = import_readers(site, 150)
        owed = {(a, n) for a, ns in readers.items() for n in ns}
        server.handler.delay = 0.01  # slow enough to be caught mid-send
        proc = start_now(site)
        wait_until(proc, lambda: len(server.handler.received) >= 120)  # past the first issue
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        before = len(server.handler.received)
        assert before < len(owed), "the run finished before it was killed"

        server.handler.delay = 0
        report = json.loads(run_publish(site, "now", "--json").stdout)
        assert report["issues"] == []  # the killed run's issues are resumed, not new ones
        copies = delivered(server)
        assert set(copies) == owed  # nobody skipped, nobody mailed a newsletter they did not choose
        extra = sum(copies.values()) - len(owed)
        assert extra <= WORKERS * CONNECTIONS * IN_FLIGHT, (
            f"{extra} duplicates: more than the messages in flight"
        )

        # The same story reaches a reader once per newsletter carrying it, never twice in one.
        with server.handler.lock:
            got = list(server.handler.received)
        per_reader: Counter[tuple[str, str]] = Counter()
        for r in got:
            text = " ".join(r.message.get_body(("plain",)).get_content().split())
            if CHIP in text:
                per_reader[(r.rcpt_tos[0], newsletter_of(r.data))] += 1
        for address, newsletters in readers.items():
            carrying = {n for n in newsletters if n in ("daily", "money")}
            assert {n for (a, n) in per_reader if a == address} == carrying
        assert sum(per_reader.values()) - len(per_reader) <= extra

        store = Store.of(configuration.load(site / "config.toml"))
        try:
            assert store.ledger.delivery_counts() == {"sent": len(owed)}
            assert {d.status for d in store.ledger.all_digests()} == {"done"}
        finally:
            store.close()


def leave(config, emails: list[str], newsletter: str) -> datetime:
    """Unsubscribe ``emails`` from one newsletter (as the one-click link does); when it committed."""
    store = Store.of(config)
    try:
        for email in emails:
            sub = store.subscribers.get(email)
            store.subscriptions.unsubscribe(sub.id, newsletter, datetime.now(UTC))
    finally:
        store.close()
    return datetime.now(UTC)


def test_leaving_one_newsletter_while_it_goes_out_stops_only_that_one(site, run_publish, store_kind):
    with MailServer() as server:
        config = smtp_site(site, server.port)
        with_newsletters(site)
        readers = import_readers(site, 150)
        leavers = [a for a, ns in readers.items() if "money" in ns][-40:]  # the end of the list
        server.handler.delay = 0.01
        proc = start_now(site)
        # daily goes first (the oldest issue): leave money while daily is still going out.
        wait_until(proc, lambda: len(server.handler.received) >= 30)
        leave(configuration.load(site / "config.toml"), leavers, "money")
        assert proc.wait(120) == 0, proc.stderr.read().decode()
        copies = delivered(server)
        for address in leavers:
            assert copies[(address, "daily")] == 1
            assert copies[(address, "money")] == 0
        for address, newsletters in readers.items():
            if address not in leavers:
                assert all(copies[(address, n)] == 1 for n in newsletters), address
        assert config.delivery.smtp.connections == CONNECTIONS
