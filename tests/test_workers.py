"""Sender processes (``delivery.workers``, ``publish deliver``): several processes, on
one machine or sharing a PostgreSQL store, send an issue's queue with every reader
getting exactly one copy; SIGTERM stops them between two messages with the rest queued
(real processes, a real SMTP server on 127.0.0.1, real SQLite and PostgreSQL stores)."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections import Counter

from publisher import config as configuration
from publisher import pipeline
from publisher.delivery.sender import IN_FLIGHT
from publisher.pipeline import Step
from tests.mailserver import add_subscribers, ledger_state, smtp_site
from tests.newsletter_site import add_article
from tests.pg import use_store
from tests.sites import descendants, publish_env, start_publish
from tests.waiting import wait_until

READERS = [f"reader{i:03}@example.com" for i in range(250)]  # three claims' worth (100 each)


def record_sessions(server) -> Counter[tuple[str, int]]:
    """Count the messages the server accepts per SMTP client (host, port): one client
    port is one connection, and each sender process here keeps one."""
    handler, per_client = server.handler, Counter()
    accept = handler.handle_DATA

    async def counted(smtp, session, envelope):  # noqa: ANN001, ANN202
        reply = await accept(smtp, session, envelope)
        if reply.startswith("250"):
            per_client[session.peer] += 1
        return reply

    handler.handle_DATA = counted  # read by each new connection
    return per_client


def queue_an_issue(site, server_port: int, **delivery) -> configuration.Config:
    """The demo site over SMTP with READERS subscribed and an issue recorded for them,
    nothing sent yet (the pipeline without its send step)."""
    config = smtp_site(site, server_port, connections=1, **delivery)
    add_subscribers(config, READERS)
    pipeline.run(config, pipeline.Options(), (Step.COLLECT, Step.DIGEST))
    assert ledger_state(config)[0] == {"queued": len(READERS)}
    return config


def sent_to(server) -> Counter[str]:
    return Counter(r.rcpt_tos[0] for r in server.handler.received)


def test_publish_now_with_two_workers_sends_each_reader_once_from_two_processes(
    site, run_publish, mail_server
):
    per_client = record_sessions(mail_server)
    # long enough for the second sender to start (the run itself sends from the first moment;
    # the other process is forked once the issue is queued): a tiny list is one process's work
    mail_server.handler.delay = 0.01
    config = smtp_site(site, mail_server.port, connections=1, workers=2)
    add_subscribers(config, READERS)
    result = run_publish(site, "now")
    assert f"delivered: {len(READERS)} sent" in result.stdout, result.stdout + result.stderr
    assert sent_to(mail_server) == Counter(READERS)  # every reader, exactly once
    # two processes (the run's own and one it started) with one connection each, both really sending
    assert len(per_client) == 2 and min(per_client.values()) > 0, per_client
    assert ledger_state(config)[0] == {"sent": len(READERS)}


def test_two_publish_deliver_on_one_postgresql_store_send_each_reader_once(site, pg_url, mail_server):
    use_store(site, pg_url)
    mail_server.handler.delay = 0.01  # long enough for the two to overlap
    per_client = record_sessions(mail_server)
    config = queue_an_issue(site, mail_server.port)
    both = [start_publish(site, "deliver", "--workers", "1") for _ in range(2)]
    results = [(p.wait(120), *p.communicate()) for p in both]
    for code, out, err in results:
        assert code == 0, out + err
        assert "Traceback" not in err
    sent = [int(out.split("delivered: ")[1].split(" sent")[0]) for _, out, _ in results]
    assert sum(sent) == len(READERS) and min(sent) > 0, results
    assert sent_to(mail_server) == Counter(READERS)
    assert len(per_client) == 2
    assert ledger_state(config)[0] == {"sent": len(READERS)}


def test_sigterm_stops_the_sender_processes_cleanly_with_the_rest_queued(any_store, run_publish, mail_server):
    site = any_store
    mail_server.handler.delay = 0.05
    config = queue_an_issue(site, mail_server.port)
    received = mail_server.handler.received
    proc = start_publish(site, "deliver", "--workers", "2")
    wait_until(lambda: len(received) >= 10, 60, "ten messages received")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, out + err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert err.strip().splitlines() == [
        "publish: stopped (SIGTERM) before it finished; what was not sent stays queued for the next run"
    ]
    counts = ledger_state(config)[0]
    assert counts["sent"] == len(received) and counts["queued"] == len(READERS) - len(received)
    assert counts.get("queued", 0) > 0
    # the next run sends the rest, nobody twice
    mail_server.handler.delay = 0
    assert f"delivered: {counts['queued']} sent" in run_publish(site, "deliver").stdout
    assert sent_to(mail_server) == Counter(READERS)
    assert run_publish(site, "deliver").stdout.strip() == "delivered: nothing queued to send"


def _alive(pid: int) -> bool:
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is dead, not yet reaped


def test_a_killed_publish_now_takes_its_sender_processes_with_it(site, run_publish, mail_server):
    """``publish now`` with two senders (its own process, and one forked from a fork
    server that imported the sending code once the issue was queued) killed with SIGKILL
    mid-send: the fork server and the other sender end too, nothing keeps sending for a
    dead run; the next run sends the rest, nobody twice beyond what was in flight."""
    mail_server.handler.delay = 0.05
    config = smtp_site(site, mail_server.port, connections=1, workers=2)
    add_subscribers(config, READERS)
    received = mail_server.handler.received
    proc = start_publish(site, "now")
    # the fork server, the sender it forked, the resource tracker
    wait_until(lambda: len(descendants(proc.pid)) >= 3, 60, "the other sender process started")
    wait_until(lambda: len(received) >= 10, 60, "ten messages received")
    started = descendants(proc.pid)
    proc.kill()
    proc.communicate(timeout=30)
    wait_until(lambda: not any(_alive(p) for p in started), 30, "every process it started to end")
    sent = len(received)
    assert ledger_state(config)[0]["sent"] >= sent - 2 * IN_FLIGHT  # one connection per sender
    mail_server.handler.delay = 0
    run_publish(site, "deliver")
    copies = sent_to(mail_server)
    assert set(copies) == set(READERS)
    assert sum(copies.values()) - len(READERS) <= 2 * IN_FLIGHT, copies.most_common(3)


CHILDREN_AFTER_A_RUN = """
import os, sys
from publisher import config, pipeline
from tests.sites import descendants
pipeline.run(config.load(sys.argv[1]), pipeline.Options())
print(len(descendants(os.getpid())))
"""


def test_a_run_with_nothing_to_send_starts_no_sender_processes(site, run_publish, mail_server):
    """The scheduler's runs mostly find nothing new: with two senders wanted, a run that
    queues nothing starts no fork server (it would stay, idle, for the daemon's lifetime);
    one that queues an issue does."""
    config = smtp_site(site, mail_server.port, connections=1, workers=2)
    add_subscribers(config, READERS)
    run_publish(site, "now")  # this edition's issue, sent
    script = [sys.executable, "-c", CHILDREN_AFTER_A_RUN, str(site / "config.toml")]
    done = subprocess.run(script, cwd=site, env=publish_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0", done.stdout  # nothing new: no issue, no process
    add_article(site, "zz_late.md", "A late story", "Politics")
    done = subprocess.run(script, cwd=site, env=publish_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() != "0", done.stdout  # an issue queued: the fork server runs
