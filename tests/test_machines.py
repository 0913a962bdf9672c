"""Exactly once across machines, on PostgreSQL: real sender processes, each in its own
UTS namespace with its own hostname (``unshare --uts``), one with a clock two minutes
ahead (Debian's ``faketime``), sharing one database and one SMTP server that records
every message per recipient.

- Two machines with the same hostname (two containers), one clock ahead, sending the
  same issue at once: every reader gets it exactly once.
- A worker paused (SIGSTOP) mid-send for longer than its claim lasts: the other
  machine takes its readers over; woken up (SIGCONT) it sends nothing more. At most
  one duplicate per message it had in flight (IN_FLIGHT per connection), nobody lost.

Both check the ledger against what the server got: every reader ``sent``, and the
server holds a message for exactly the readers the ledger says were sent to.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from publisher import config as configuration
from publisher import pipeline
from publisher.delivery.sender import IN_FLIGHT
from publisher.store import Store
from publisher.store.schema import deliveries, subscribers
from tests.mailserver import MailServer, smtp_site
from tests.sites import edit_config, publish, publish_command, publish_env, require_binary
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

READERS = 300
CONNECTIONS = 2  # each worker's SMTP connections, each with at most IN_FLIGHT messages in flight
LEASE = 3  # seconds (store.lease, the minimum): a claim lasts this long unrenewed
SKEW = 120  # seconds the second machine's clock is ahead
# Only the wall clock is skewed: a machine's monotonic clock means nothing to another
# one, and libfaketime's faked monotonic clock makes every timed wait of a Python
# thread (sem_clockwait) last SKEW seconds longer.
SKEWED = {**os.environ, "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
# The command each machine runs to send: one sender process joining the sending of
# every unfinished issue (as bench/million.py runs it).
WORKER = ("deliver", "--workers", "1")


def require_namespaces() -> None:
    """unshare --uts needs root (CAP_SYS_ADMIN); skip locally without it, fail in CI."""
    unshare = require_binary("unshare")
    done = subprocess.run([unshare, "--uts", "true"], capture_output=True, text=True)
    if done.returncode != 0:
        why = f"unshare --uts does not work here (run as root): {done.stderr.strip()}"
        pytest.fail(why) if os.environ.get("CI") else pytest.skip(why)


def require_faketime() -> str:
    """faketime's path, once it is seen to move a Python process's clock by SKEW."""
    faketime = require_binary("faketime")
    probe = [faketime, "-f", f"+{SKEW}s", "python3", "-c", "import time; print(time.time())"]
    done = subprocess.run(probe, capture_output=True, text=True, check=True, env=SKEWED, timeout=30)
    ahead = float(done.stdout) - time.time()
    assert SKEW - 10 < ahead < SKEW + 10, f"faketime moved the clock by {ahead:.1f} s, not {SKEW}"
    return faketime


class Machine:
    """``publish WORKER`` as another machine would run it: its own hostname, its own
    clock if ``ahead``, in its own process group (faketime forks the real process, so
    signals go to the group)."""

    def __init__(self, site: Path, hostname: str, ahead: int = 0) -> None:
        command = shlex.join(publish_command(site, *WORKER))
        if ahead:
            command = f"{shlex.quote(require_faketime())} -f +{ahead}s {command}"
        self.name = hostname
        self.proc = subprocess.Popen(
            ["unshare", "--uts", "sh", "-c", f"hostname {hostname} && exec {command}"],
            cwd=site,
            env=publish_env(SKEWED if ahead else None),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    def signal(self, sig: int) -> None:
        os.killpg(self.proc.pid, sig)

    def finish(self, timeout: float = 120) -> tuple[int, str]:
        """Its exit status and everything it printed, once it has exited."""
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            out, err = self.proc.communicate()
            raise AssertionError(f"{self.name} did not finish in {timeout} s:\n{out}\n{err}") from None
        return self.proc.returncode, f"{self.name} exited {self.proc.returncode}:\n{out}\n{err}"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.signal(signal.SIGCONT)
            self.signal(signal.SIGKILL)
            self.proc.communicate()


@pytest.fixture
def machines():
    """``machines(site, hostname, ahead=0)`` starts a Machine; any left is killed."""
    started: list[Machine] = []

    def start(site: Path, hostname: str, ahead: int = 0) -> Machine:
        started.append(Machine(site, hostname, ahead))
        return started[-1]

    yield start
    for m in started:
        m.kill()


@pytest.fixture
def shared_site(site: Path, pg_url: str, mail_server: MailServer, tmp_path: Path) -> list[str]:
    """The demo site on one PostgreSQL database, delivering to ``mail_server`` with
    CONNECTIONS connections and a LEASE-second claim, READERS readers imported and an
    issue queued for them (nothing sent yet); returns the readers' addresses."""
    require_namespaces()
    smtp_site(site, mail_server.port, connections=CONNECTIONS)
    edit_config(site, 'url = "sqlite:///publisher.db"', f'url = "{pg_url}"\nlease = {LEASE}\nlock_wait = 60')
    readers = [f"reader{i:04}@example.com" for i in range(READERS)]
    (tmp_path / "readers.csv").write_text("email\n" + "\n".join(readers) + "\n", encoding="utf-8")
    publish(site, "subscribers", "import", str(tmp_path / "readers.csv"))
    # The issue is made as `publish now` makes it, without sending: the machines send it.
    config = configuration.load(site / "config.toml")
    steps = (pipeline.Step.COLLECT, pipeline.Step.DIGEST, pipeline.Step.BUILD)
    report = pipeline.run(config, pipeline.Options(), steps)
    assert [i.key for i in report.issues] and not mail_server.handler.received
    return readers


def sent_by(logs: str) -> int:
    """How many messages a machine says it sent (its summary line)."""
    return sum(int(n) for n in re.findall(r"delivered: (\d+) sent", logs))


def ledger(site: Path) -> dict[str, str]:
    """Every reader's delivery status in the ledger (one issue)."""
    with Store.of(configuration.load(site / "config.toml")) as store:
        q = select(subscribers.c.email, deliveries.c.status).join(
            subscribers, subscribers.c.id == deliveries.c.subscriber_id
        )
        with store.engine.connect() as conn:
            rows = conn.execute(q).all()
    statuses = dict(rows)
    assert len(statuses) == len(rows), "more than one delivery of the issue for a reader"
    return statuses


def got(server: MailServer) -> Counter[str]:
    """How many messages the server accepted for each recipient."""
    with server.handler.lock:
        return Counter(r.rcpt_tos[0] for r in server.handler.received)


def check_exactly_once(site: Path, server: MailServer, readers: list[str], in_flight: int, logs: str) -> None:
    copies = got(server)
    missing = sorted(set(readers) - set(copies))
    assert not missing, f"{len(missing)} readers got nothing, e.g. {missing[:3]}\n{logs}"
    assert set(copies) == set(readers), "mail to someone who is not a reader"
    twice = {a: n for a, n in copies.items() if n > 1}
    extra = sum(copies.values()) - len(readers)
    assert extra <= in_flight, (
        f"{extra} duplicates ({len(twice)} readers got more than one copy, e.g. "
        f"{sorted(twice.items())[:3]}); at most {in_flight} were in flight\n{logs}"
    )
    statuses = ledger(site)
    assert Counter(statuses.values()) == {"sent": len(readers)}, logs
    assert {a for a, s in statuses.items() if s == "sent"} == set(copies)  # the ledger's sent = the server's


def test_two_machines_with_one_hostname_and_one_clock_ahead_send_each_reader_one_copy(
    site, shared_site, mail_server, machines
):
    readers = shared_site
    mail_server.handler.delay = 0.05  # the first machine is still sending when the second starts
    first = machines(site, "newsroom")
    wait_until(lambda: mail_server.handler.received, 60, "the first machine sending")
    second = machines(site, "newsroom", ahead=SKEW)  # same hostname, clock 2 minutes ahead
    results = [first.finish(), second.finish()]
    logs = "\n".join(text for _, text in results)
    assert [code for code, _ in results] == [0, 0], logs
    assert "Traceback" not in logs, logs
    assert all(sent_by(text) for _, text in results), f"the machines did not share the issue\n{logs}"
    check_exactly_once(site, mail_server, readers, 0, logs)


def test_a_paused_machine_loses_its_readers_and_sends_nothing_more_when_it_wakes(
    site, shared_site, mail_server, machines
):
    readers = shared_site
    mail_server.handler.delay = 0.02  # slow enough to be caught mid-send, and to wake mid-send
    paused = machines(site, "node-a")
    wait_until(lambda: len(mail_server.handler.received) >= 30, 60, "node-a sending")
    paused.signal(signal.SIGSTOP)
    stopped_at = len(mail_server.handler.received)
    assert stopped_at < READERS, "node-a finished before it was paused"
    time.sleep(LEASE + 1.5)  # node-a's claim (renewed at its last commit) expires meanwhile
    other = machines(site, "node-b", ahead=SKEW)
    wait_until(lambda: len(mail_server.handler.received) >= stopped_at + 30, 60, "node-b sending")
    paused.signal(signal.SIGCONT)  # wakes up while node-b is still sending
    results = [paused.finish(), other.finish()]
    logs = "\n".join(text for _, text in results)
    assert results[1][0] == 0, logs
    assert "Traceback" not in logs, logs
    # What node-a sent in all: what the server had when it stopped, and its messages in
    # flight then; the rest of its claim was node-b's to send.
    assert sent_by(results[0][1]) <= stopped_at + CONNECTIONS * IN_FLIGHT, (
        f"node-a sent on after it woke\n{logs}"
    )
    check_exactly_once(site, mail_server, readers, CONNECTIONS * IN_FLIGHT, logs)
