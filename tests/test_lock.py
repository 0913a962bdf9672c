"""The site's one lock: a row in the store, renewed while held, its expiry judged by the
database's clock; a holder the kernel or the database server knows is gone loses it at
once, a live one never (whatever the taker's clock, hostname or pid namespace says);
with it, two `publish now` started together send every subscriber exactly one digest
(real processes, a real SMTP server on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from publisher import audience, issues, pipeline
from publisher import config as configuration
from publisher.config import SmtpConfig
from publisher.delivery.sender import send_queued
from publisher.delivery.smtp import SmtpTransport
from publisher.errors import LockLost
from publisher.locks import SITE_LOCK, Lock
from publisher.models import Outcome
from publisher.store import Store
from publisher.store.claims import Claim
from publisher.store.schema import locks
from tests.daemon import NEVER_SOON, configure, plant_missed_digest
from tests.mailserver import add_subscribers, smtp_site
from tests.sites import edit_config, publish_command, publish_env, require_binary, start_publish
from tests.waiting import wait_until


def test_two_publish_now_at_once_send_each_subscriber_one_digest(any_store, mail_server):
    """30 subscribers, two `publish now` started together: one issue (made under the
    site lock), one copy each (the two share its sending by claims)."""
    site = any_store
    readers = [f"reader{i}@example.com" for i in range(30)]
    add_subscribers(smtp_site(site, mail_server.port), readers)
    mail_server.handler.delay = 0.02  # each message takes a while, so two senders would overlap
    both = [start_publish(site, "now"), start_publish(site, "now")]
    results = [(p.wait(60), *p.communicate()) for p in both]
    for code, out, err in results:
        assert code == 0, f"{out}\n{err}"
    received = mail_server.handler.received
    assert sorted(r.rcpt_tos[0] for r in received) == sorted(readers)
    assert len({r.message["Message-ID"] for r in received}) == len(readers)
    outputs = "".join(out for _, out, _ in results)
    assert outputs.count("digest of ") == 1  # one issue
    assert sum(int(n) for n in re.findall(r"delivered: (\d+) sent", outputs)) == len(readers)


class _OtherSendsMeanwhile:
    """The ledger as ``send_queued`` sees it, where another sender (``other``'s claim)
    records one more message sent right after each read that follows the first."""

    def __init__(self, store: Store, other: Claim, readers: list[int]) -> None:
        self.ledger, self.other, self.readers, self.reads = store.ledger, other, readers, 0

    def _after_a_read(self) -> None:
        self.reads += 1
        if self.reads > 1 and self.readers:
            assert self.other.commit([Outcome(self.readers.pop(0), "sent")], datetime.now(UTC), 3).held

    def queued_count(self, digest_id: int) -> int:
        count = self.ledger.queued_count(digest_id)
        self._after_a_read()
        return count

    def queue_state(self, digest_id: int) -> tuple[int, int]:
        state = self.ledger.queue_state(digest_id)
        self._after_a_read()
        return state

    def claim(self, digest_id: int, ttl: float) -> Claim:
        return self.ledger.claim(digest_id, ttl)

    def finish(self, digest_id: int) -> None:
        self.ledger.finish(digest_id)


def test_a_delivery_another_sender_sends_while_a_run_tallies_is_not_left_queued(any_store, mail_server):
    """The deterministic form of the race behind the test above: what is still queued and
    what another live sender holds are one snapshot, so a message that sender sends
    meanwhile is never counted as left for the next run (which made `publish now` exit 1)."""
    config = configuration.load(any_store / "config.toml")
    with Store.of(config) as store:
        for i in range(5):
            audience.add(store, f"r{i}@example.com")
        record = store.ledger.create_digest("2026-12-04", "s", "<p>x</p>", "x", [], datetime.now(UTC))
        smtp = SmtpConfig(host="127.0.0.1", port=mail_server.port, security="none", timeout=5)
        with store.ledger.claim(record.id, ttl=60) as other:
            held = [r.id for r in other.take(3).readers]
            report = send_queued(
                _OtherSendsMeanwhile(store, other, held),
                record.id,
                "d@news.example.com",
                lambda s: b"Subject: x\r\n\r\nx\r\n",
                lambda: SmtpTransport(smtp),
            )
            assert (report.sent, report.left) == (2, 0)
            assert 1 <= report.elsewhere <= 3
        assert store.ledger.delivery_counts() == {"sent": 5 - len(held), "queued": len(held)}


def test_collect_and_feeds_finish_while_a_long_send_goes_on(site, run_publish, mail_server):
    """The site lock covers collecting, making issues and writing feeds, not sending: a
    breaking story reaches the feeds while a digest is still going out (here the server
    holds its reply to the first message until both are done)."""
    handler, reply = mail_server.handler, threading.Event()
    accept, arrived = handler.handle_DATA, threading.Event()

    async def slow(smtp, session, envelope):  # noqa: ANN001, ANN202
        arrived.set()
        await asyncio.get_running_loop().run_in_executor(None, reply.wait, 60)
        return await accept(smtp, session, envelope)

    handler.handle_DATA = slow  # read by each new connection
    config = smtp_site(site, mail_server.port, connections=1, workers=1)
    readers = [f"reader{i}@example.com" for i in range(5)]
    add_subscribers(config, readers)
    edit_config(site, "[store]\n", "[store]\nlock_wait = 0\n")  # busy: fail at once
    sending = start_publish(site, "now")
    try:
        assert arrived.wait(60), "the send never started"
        assert "articles: 0 new" in run_publish(site, "collect").stdout
        assert "files:" in run_publish(site, "feeds").stdout
        assert sending.poll() is None and not handler.received  # the send still waits for its reply
    finally:
        reply.set()
    out, err = sending.communicate(timeout=60)
    assert sending.returncode == 0 and f"delivered: {len(readers)} sent" in out, out + err
    assert sorted(r.rcpt_tos[0] for r in handler.received) == sorted(readers)


def test_a_busy_lock_makes_publish_now_wait_then_name_its_holder(any_store, run_publish):
    site = any_store
    edit_config(site, "[store]\n", "[store]\nlock_wait = 1\n")
    store = Store.open(configuration.load(site / "config.toml").store_url)
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
    holder = Lock(store.meta, "publish", "a long run", ttl=1.5)
    rival = Lock(store.meta, "publish", "a rival", ttl=1.5)
    assert holder.try_acquire() is None
    _, first_expiry = store.meta.lock_holder("publish")
    # past the first expiry: only the heartbeat (every ttl/3) keeps it
    wait_until(lambda: datetime.now(UTC) > first_expiry + timedelta(seconds=0.5), 10, "the first expiry")
    assert rival.try_acquire() == holder.owner
    assert not holder.lost.is_set()
    holder.release()
    assert rival.try_acquire() is None
    rival.release()
    assert store.meta.lock_holder("publish") is None
    store.close()


HOLDER = (
    "import sys, time\n"
    "from publisher.store import Store\n"
    "from publisher.locks import Lock\n"
    "lock = Lock(Store.open(sys.argv[1]).meta, 'publish', 'a live run', ttl=float(sys.argv[2]))\n"
    "assert lock.try_acquire() is None\n"
    "print('held', flush=True)\n"
    "time.sleep(120)\n"
)


def hold_site_lock(site, ttl: float, prefix: tuple[str, ...] = ()) -> subprocess.Popen[str]:
    """A process (started under ``prefix``) that takes the site lock for ``ttl``
    seconds, renewed, and keeps it until killed; returns once it holds it."""
    url = configuration.load(site / "config.toml").store_url
    proc = subprocess.Popen(
        [*prefix, sys.executable, "-c", HOLDER, url, str(ttl)],
        stdout=subprocess.PIPE,
        text=True,
        env=publish_env(),
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def publish_under(site, prefix: tuple[str, ...], *args: str) -> subprocess.CompletedProcess[str]:
    """``publish ARGS`` run under a command prefix (faketime, unshare)."""
    return subprocess.run(
        [*prefix, *publish_command(site, *args)],
        capture_output=True,
        text=True,
        env=publish_env(),
        timeout=120,
    )


def as_host(name: str, *unshare: str) -> tuple[str, ...]:
    """Run a command as if on a machine called ``name``: its own UTS namespace (and any
    other ``unshare`` option, e.g. ``--pid --fork``: a container's own process ids)."""
    return (require_binary("unshare"), "--uts", *unshare, "sh", "-c", f'hostname {name} && exec "$@"', "sh")


def test_a_run_killed_mid_way_leaves_a_lock_taken_at_once(any_store, run_publish):
    """SIGKILL: no clean release, yet the next run need not wait the lease (60 s):
    the kernel (a flock beside SQLite) or the server (a PostgreSQL session advisory
    lock) says the holder is gone."""
    site = any_store
    edit_config(site, "[store]\n", "[store]\nlease = 60\nlock_wait = 20\n")
    proc = hold_site_lock(site, 60)
    proc.kill()
    proc.wait()
    # lock_wait (20 s) is shorter than the lease: this succeeds only if the lock is taken early
    assert "9 new" in run_publish(site, "now").stdout


def test_a_taker_whose_clock_runs_120_s_ahead_does_not_take_a_live_lock(any_store):
    site = any_store
    edit_config(site, "[store]\n", "[store]\nlease = 60\nlock_wait = 1\n")
    proc = hold_site_lock(site, 60)
    try:
        # the wall clock only: libfaketime's monotonic clock hangs Python's timed waits
        ahead = publish_under(
            site, ("env", "FAKETIME_DONT_FAKE_MONOTONIC=1", require_binary("faketime"), "-f", "+120s"), "now"
        )
        assert ahead.returncode == 1, ahead.stdout + ahead.stderr
        assert "locked by a live run on" in ahead.stderr
    finally:
        proc.kill()
        proc.wait()


def test_a_holder_on_another_machine_with_the_same_hostname_is_not_judged_dead_by_its_pid(any_store):
    """Two containers, one hostname: the taker's own pid namespace has no process with
    the holder's pid, which says nothing about the holder."""
    site = any_store
    edit_config(site, "[store]\n", "[store]\nlease = 60\nlock_wait = 1\n")
    proc = hold_site_lock(site, 60, as_host("same"))
    try:
        taker = publish_under(site, as_host("same", "--pid", "--fork"), "now")
        assert taker.returncode == 1, taker.stdout + taker.stderr
        assert f"locked by a live run on same pid {proc.pid}" in taker.stderr
    finally:
        proc.kill()
        proc.wait()


def test_a_holder_that_lost_its_lock_stops_before_its_next_write(any_store):
    """Its lock taken meanwhile (it was paused past its lease): the next renewal sees
    it, and the holder's next check stops it."""
    site = any_store
    store = Store.open(configuration.load(site / "config.toml").store_url)
    holder = Lock(store.meta, "publish", "a paused run", ttl=0.6)
    assert holder.try_acquire() is None
    with store.engine.begin() as conn:
        conn.execute(locks.update().values(owner="publish now on elsewhere pid 1 [other]"))
    wait_until(holder.lost.is_set, 10, "the renewal noticing the lock was lost")
    with pytest.raises(LockLost):
        holder.check()
    holder.release()
    assert store.meta.lock_holder("publish")[0] == "publish now on elsewhere pid 1 [other]"
    store.close()


def test_a_node_that_lost_the_site_lock_cannot_create_an_issue(any_store):
    """Its lock taken meanwhile (it was paused past its lease) and its heartbeat not yet
    run, so ``check()`` still passes: the issue's own transaction renews the lock (a fence)
    and rolls back whole: no issue, no delivery, the content version unmoved."""
    site = any_store
    config = configuration.load(site / "config.toml")
    with Store.of(config) as store:
        audience.add(store, "reader@example.com")
        pipeline.run(config, pipeline.Options(), (pipeline.Step.COLLECT,))
        version = store.meta.content_version()
        lock = Lock(store.meta, SITE_LOCK, "a paused run", ttl=60)
        assert lock.try_acquire() is None
        try:
            with store.engine.begin() as conn:
                conn.execute(locks.update().values(owner="publish now on elsewhere pid 1 [other]"))
            lock.check()  # not noticed yet
            with pytest.raises(LockLost):
                issues.prepare(config, store, datetime.now(UTC), config.newsletters, fence=lock.fence)
            assert lock.lost.is_set()
            assert store.ledger.all_digests() == []
            assert store.ledger.delivery_counts() == {}
            assert store.meta.content_version() == version
        finally:
            lock.release()
        holder = Lock(store.meta, SITE_LOCK, "the next run", ttl=60)  # the lock its own: the issue is made
        assert holder.try_acquire() is None
        try:
            done = issues.prepare(config, store, datetime.now(UTC), config.newsletters, fence=holder.fence)
        finally:
            holder.release()
        assert [i.state for i in done.issues] == ["sending"]
        assert store.ledger.delivery_counts() == {"queued": 1}
        assert store.meta.content_version() == version + 1  # in the issue's transaction


def test_sigterm_during_a_digest_finishes_the_message_and_the_next_run_resumes(
    site, run_publish, mail_server, daemons
):
    mail_server.handler.delay = 0.1
    config = smtp_site(site, mail_server.port)
    configure(site, digest=NEVER_SOON)
    readers = [f"reader{i}@example.com" for i in range(40)]
    add_subscribers(config, readers)
    run_publish(site, "now", "--no-email")
    plant_missed_digest(site, timedelta(minutes=1))
    daemon = daemons(site)
    received = mail_server.handler.received
    wait_until(lambda: len(received) >= 3, 20, "three messages received")
    code, took = daemon.stop()
    assert code == 0, daemon.log
    assert took < 3
    sent_first = len(received)
    assert 3 <= sent_first < len(readers), daemon.log
    assert "stopped before it finished" in daemon.log
    assert "interrupted" in run_publish(site, "status").stdout
    assert f"{len(readers) - sent_first} sent" in run_publish(site, "now").stdout
    assert sorted(r.rcpt_tos[0] for r in received) == sorted(readers)
