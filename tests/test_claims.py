"""Deliveries are claimed, not read (publisher/store/claims.py), on SQLite and PostgreSQL,
with real processes and a real SMTP server on loopback:

- two senders sharing one issue: every reader gets exactly one copy;
- a sender paused (SIGSTOP) past its claim's expiry while another takes the rest over:
  once resumed it sends nothing more than what was in flight, and exits;
- a commit by a claim that was taken over changes nothing (the fencing token);
- a killed sender's claim is taken over at once (the kernel or the server says it is
  gone); a live one's, paused or not, is left alone until it expires."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from publisher import audience, pipeline
from publisher import config as configuration
from publisher.config import SmtpConfig
from publisher.delivery.sender import IN_FLIGHT, send_queued
from publisher.delivery.smtp import SmtpTransport
from publisher.models import Outcome
from publisher.store import Store, clock
from publisher.store.claiming import FRESH
from publisher.store.schema import claims, deliveries
from tests.mailserver import MailServer, add_subscribers, smtp_site
from tests.sites import edit_config, publish_env

CONNECTIONS = 2  # smtp_site's: at most IN_FLIGHT messages in flight on each, per sender
NOW = datetime(2026, 12, 4, 7, 0, tzinfo=UTC)

# A sender process: waits for GO (a file) when given one, then sends the site's
# unfinished issue as pipeline.deliver does, with the claim lasting store.lease seconds;
# prints its SendReport as JSON.
SENDER = """
import json, os, sys, time
from dataclasses import asdict
from publisher import config as configuration
from publisher.delivery import transports
from publisher.delivery.sender import SendPolicy, send_queued
from publisher.messages import Messages
from publisher.store import Store

config = configuration.load(sys.argv[1])
print("ready", flush=True)
while len(sys.argv) > 2 and not os.path.exists(sys.argv[2]):
    time.sleep(0.01)
factory, connections = transports(config.delivery)
d = config.delivery
policy = SendPolicy(connections, d.retries, d.retry_delay, d.bounce_limit, claim_ttl=config.store.lease, claim_size=20)
with Store.of(config) as store:
    [record] = store.ledger.unfinished()
    messages = Messages.for_site(config, store)
    report = send_queued(
        store.ledger.part(record.id, None, record.newsletter),
        record.id,
        lambda sub: messages.envelope(record.id, sub),
        messages.digest(record, record.newsletter),
        factory,
        policy,
    )
print(json.dumps(asdict(report)), flush=True)
"""

# Holds a claim (600 s) on every queued delivery of issue argv[2], says so, then sleeps.
HOLDER = """
import sys, time
from publisher.store import Store
store = Store.open(sys.argv[1])
claim = store.ledger.claim(int(sys.argv[2]), 600)
claim.take(1000)
print("claimed", flush=True)
time.sleep(600)
"""


def sender(site: Path, go: Path | None = None) -> subprocess.Popen[str]:
    args = [sys.executable, "-c", SENDER, str(site / "config.toml"), *([str(go)] if go else [])]
    proc = subprocess.Popen(
        args, cwd=site, env=publish_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready", proc.stderr
    return proc


def finished(proc: subprocess.Popen[str], timeout: float = 120) -> dict:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    assert "Traceback" not in err, err
    return json.loads(out.strip().splitlines()[-1])


def wait_for(condition, timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def issue_for(site: Path, readers: list[str], lease: int | None = None) -> configuration.Config:
    """Readers, and an issue of the demo site queued for them (nothing sent yet)."""
    if lease is not None:
        edit_config(site, '[store]\nurl = "', f'[store]\nlease = {lease}\nurl = "')
    config = configuration.load(site / "config.toml")
    add_subscribers(config, readers)
    pipeline.run(config, pipeline.Options(), (pipeline.Step.COLLECT, pipeline.Step.DIGEST))
    return config


def pause_outside_a_write(proc: subprocess.Popen[str], config: configuration.Config) -> None:
    """SIGSTOP ``proc``. On SQLite, at a moment it holds no write transaction: a process
    frozen inside one blocks every writer of the file until it resumes or dies (SQLite's
    one writer; nothing can take that lock from it). PostgreSQL ends a session frozen
    inside a transaction itself (the claim's idle_in_transaction_session_timeout)."""
    os.kill(proc.pid, signal.SIGSTOP)
    if not config.store_url.startswith("sqlite:///"):
        return
    while True:
        db = sqlite3.connect(config.store_url.removeprefix("sqlite:///"), timeout=0, isolation_level=None)
        try:
            db.execute("BEGIN IMMEDIATE")
            db.execute("ROLLBACK")
            return
        except sqlite3.OperationalError:  # frozen while writing: let it finish, try again
            os.kill(proc.pid, signal.SIGCONT)
            time.sleep(0.003)
            os.kill(proc.pid, signal.SIGSTOP)
        finally:
            db.close()


def copies(server: MailServer) -> Counter[str]:
    with server.handler.lock:
        return Counter(r.rcpt_tos[0] for r in server.handler.received)


def ledger(config: configuration.Config) -> tuple[dict[str, int], list[str], int]:
    with Store.of(config) as store:
        with store.engine.connect() as conn:
            left = conn.execute(select(claims.c.id)).all()
        return store.ledger.delivery_counts(), [d.status for d in store.ledger.all_digests()], len(left)


def test_two_senders_share_one_issue_and_every_reader_gets_exactly_one_copy(any_store: Path) -> None:
    site = any_store
    readers = [f"reader{i:03}@example.com" for i in range(240)]
    with MailServer() as server:
        smtp_site(site, server.port, connections=CONNECTIONS)
        config = issue_for(site, readers)
        server.handler.delay = 0.005
        go = site / "go"
        first, second = sender(site, go), sender(site, go)
        go.touch()  # both start claiming at once
        reports = [finished(first), finished(second)]
        got = copies(server)
    assert set(got) == set(readers) and set(got.values()) == {1}, "a reader got two copies or none"
    assert sum(r["sent"] for r in reports) == len(readers)
    assert all(r["sent"] > 0 for r in reports), reports  # both took part
    assert not any(r["lost"] for r in reports)
    assert ledger(config) == ({"sent": len(readers)}, ["done"], 0)


def test_a_sender_paused_past_its_claim_sends_nothing_more_once_resumed(any_store: Path) -> None:
    site = any_store
    readers = [f"reader{i:03}@example.com" for i in range(150)]
    with MailServer() as server:
        smtp_site(site, server.port, connections=CONNECTIONS)
        config = issue_for(site, readers, lease=3)
        server.handler.delay = 0.02  # slow enough to be paused mid-send
        paused = sender(site)
        wait_for(lambda: len(server.handler.received) >= 20, what="the first sender to get going")
        pause_outside_a_write(paused, config)
        try:
            with Store.of(config) as store, store.engine.connect() as conn:
                wait_for(
                    lambda: conn.execute(select(claims.c.expires)).scalar() < clock.now(conn),
                    what="its claim to expire by the database's clock",
                )
                conn.rollback()
            server.handler.delay = 0
            other = finished(sender(site))  # takes the expired claim's rows over
            before = len(server.handler.received)
        finally:
            os.kill(paused.pid, signal.SIGCONT)
        resumed = finished(paused, timeout=60)
        after = len(server.handler.received)
        got = copies(server)
    assert after - before <= CONNECTIONS * IN_FLIGHT, (
        f"{after - before} messages sent after the claim was lost"
    )
    assert resumed["lost"] and "took over" in resumed["lost"]
    assert set(got) == set(readers)  # nobody lost
    assert other["sent"] + resumed["sent"] == sum(got.values())
    assert ledger(config) == ({"sent": len(readers)}, ["done"], 0)
    # The duplicates are exactly the paused sender's messages it had not recorded when it
    # was paused (in its transports, or accepted and not yet committed), resent by the
    # other: the rows it recorded carry its claim's number.
    with Store.of(config) as store, store.engine.connect() as conn:
        per_claim = dict(
            conn.execute(select(deliveries.c.claim_id, func.count()).group_by(deliveries.c.claim_id)).all()
        )
    unrecorded = resumed["sent"] - per_claim[min(per_claim)]
    assert sum(got.values()) - len(readers) == unrecorded <= CONNECTIONS * IN_FLIGHT


@pytest.fixture
def store(any_store: Path):
    config = configuration.load(any_store / "config.toml")
    with Store.of(config) as store:
        for i in range(5):
            audience.add(store, f"r{i}@example.com")
        yield store


def test_a_commit_by_a_claim_that_was_taken_over_changes_nothing(store: Store) -> None:
    record = store.ledger.create_digest("2026-12-04", "s", "<p>x</p>", "x", [], NOW)
    stale = store.ledger.claim(record.id, ttl=0.2)
    batch = stale.take(10)
    assert len(batch.readers) == 5
    with store.engine.connect() as conn:
        wait_for(lambda: conn.execute(select(claims.c.expires)).scalar() < clock.now(conn), what="expiry")
    with store.ledger.claim(record.id, ttl=60) as fresh:
        assert len(fresh.take(10).readers) == 5  # the expired claim's rows, taken over
        done = stale.commit([Outcome(r.id, "sent") for r in batch.readers], datetime.now(UTC), 3)
        assert not done.held and stale.lost and not stale.take(10).readers
        assert store.ledger.delivery_counts() == {"queued": 5}
        with store.engine.connect() as conn:
            owners = set(conn.execute(select(deliveries.c.claim_id)).scalars())
        assert owners == {fresh.id}
        assert fresh.commit([Outcome(r.id, "sent") for r in batch.readers], datetime.now(UTC), 3).held
    stale.release()  # gives back nothing: none of the rows is its own
    assert store.ledger.delivery_counts() == {"sent": 5}


def test_a_killed_senders_claim_is_taken_over_at_once_a_paused_ones_only_once_expired(
    store: Store,
) -> None:
    record = store.ledger.create_digest("2026-12-04", "s", "<p>x</p>", "x", [], NOW)
    url = store.engine.url.render_as_string(hide_password=False)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, url, str(record.id)],
        env=publish_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "claimed", holder.stderr
        with store.ledger.claim(record.id, ttl=60) as other:
            assert other.take(10).readers == []  # a live holder's rows (its claim: 600 s)
        os.kill(holder.pid, signal.SIGSTOP)
        with store.ledger.claim(record.id, ttl=60) as other:
            assert other.take(10).readers == []  # paused is alive: it waits for the expiry
    finally:
        holder.kill()
        holder.wait()
    with store.ledger.claim(record.id, ttl=60) as other:
        assert len(other.take(10).readers) == 5  # killed: taken over at once


def test_a_released_claim_gives_back_what_it_did_not_send(store: Store) -> None:
    record = store.ledger.create_digest("2026-12-04", "s", "<p>x</p>", "x", [], NOW)
    with store.ledger.claim(record.id, ttl=60) as first:
        readers = first.take(10).readers
        assert first.commit([Outcome(readers[0].id, "sent")], datetime.now(UTC), 3).held
    with store.ledger.claim(record.id, ttl=60) as second:
        assert [r.id for r in second.take(10).readers] == [r.id for r in readers[1:]]
    assert store.ledger.delivery_counts() == {"sent": 1, "queued": 4}


def test_a_claim_takes_rows_given_back_behind_it_first_and_skips_who_left(store: Store) -> None:
    """A claim searches past the last reader it took, then from the start: rows another
    claim gave back behind it come first (the batch stays in subscriber order), and a
    reader who left meanwhile is recorded skipped, not handed out."""
    record = store.ledger.create_digest("2026-12-04", "s", "<p>x</p>", "x", [], NOW)
    with store.ledger.claim(record.id, ttl=60) as second:
        with store.ledger.claim(record.id, ttl=60) as first:
            given_back = first.take(2).readers
            assert [r.email for r in second.take(2).readers] == ["r2@example.com", "r3@example.com"]
        audience.unsubscribe_all(store, given_back[1])
        batch = second.take(10)
        assert [r.email for r in batch.readers] == ["r0@example.com", "r4@example.com"]
        assert batch.skipped == 1
        assert store.ledger.delivery_counts() == {"skipped": 1, "queued": 4}


def test_a_suppression_that_ends_while_a_claim_sends_ends_for_its_readers_too(store: Store) -> None:
    """The claim's statements are compiled once, not once per call: the time their
    audience check binds (suppressions in force) is renewed as they age."""
    record = store.ledger.create_digest("2026-12-04", "s", "<p>x</p>", "x", [], NOW)
    with store.ledger.claim(record.id, ttl=60) as claim:
        readers = claim.take(10).readers
        until = datetime.now(UTC) + timedelta(seconds=2)  # room for a slow machine
        store.feedback.suppress(readers[4].email, "manual", "", datetime.now(UTC), until)
        assert claim.commit([], datetime.now(UTC), 3).left == (readers[4].id,)
        time.sleep((until - datetime.now(UTC)).total_seconds() + FRESH + 0.1)
        assert claim.commit([], datetime.now(UTC), 3).left == ()


def test_a_claims_commits_on_postgresql_leave_nothing_prepared_on_the_pooled_connection(
    site: Path, pg_url: str
) -> None:
    """On PostgreSQL a commit of delivered messages runs statements the claim prepared on
    its session (one round trip); giving the claim back drops them before its connection
    returns to the pool, where the next claim prepares its own."""
    from tests.pg import use_store

    use_store(site, pg_url)
    with Store.of(configuration.load(site / "config.toml")) as store:
        for i in range(4):
            audience.add(store, f"r{i}@example.com")
        record = store.ledger.create_digest("2026-12-04", "s", "<p>x</p>", "x", [], NOW)
        for _ in range(2):
            with store.ledger.claim(record.id, ttl=60) as claim:
                first, *_ = claim.take(10).readers
                assert claim.commit([Outcome(first.id, "sent")], datetime.now(UTC), 3).held
                session = claim._raw
            prepared = session.execute("SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'claim%'")
            assert prepared.fetchone()[0] == 0
            session.rollback()
        assert store.ledger.delivery_counts() == {"sent": 2, "queued": 2}


def test_a_sender_that_finds_every_row_claimed_elsewhere_says_so(
    store: Store, mail_server: MailServer
) -> None:
    """Rows another live sender holds are its to send: not left for the next run."""
    record = store.ledger.create_digest("2026-12-04", "s", "<p>x</p>", "x", [], NOW)
    smtp = SmtpConfig(host="127.0.0.1", port=mail_server.port, security="none", timeout=5)
    with store.ledger.claim(record.id, ttl=60) as other:
        assert len(other.take(3).readers) == 3
        report = send_queued(
            store.ledger,
            record.id,
            "d@news.example.com",
            lambda s: b"Subject: x\r\n\r\nx\r\n",
            lambda: SmtpTransport(smtp),
        )
    assert (report.sent, report.left, report.elsewhere) == (2, 0, 3)
    assert [d.status for d in store.ledger.all_digests()] == ["sending"]  # the other sender finishes it
    assert store.ledger.delivery_counts() == {"sent": 2, "queued": 3}


def test_an_issue_queued_on_postgresql_is_known_to_its_planner(site: Path, pg_url: str) -> None:
    """Measured: a deliveries table the planner had never analyzed (the issue's rows
    inserted a moment ago) was read whole by every commit of outcomes and every claim
    (1 ms per commit of 4 outcomes and 8 ms per claim of 100 at 10,000 readers, half of
    the send's time); queueing an issue analyzes it, so both use their indexes."""
    from tests.pg import use_store

    use_store(site, pg_url)
    config = configuration.load(site / "config.toml")
    with Store.of(config) as store:
        for i in range(300):
            audience.add(store, f"r{i}@example.com")
        store.ledger.create_digest("2026-12-04", "s", "<p>x</p>", "x", [], NOW)
        with store.engine.connect() as conn:
            known = conn.exec_driver_sql(
                "SELECT reltuples FROM pg_class WHERE relname = 'deliveries'"
            ).scalar_one()
        assert known == 300  # never analyzed: -1 (PostgreSQL 14+), which the planner reads as tiny
