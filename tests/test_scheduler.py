"""`publish run` as a real daemon on a fast (seconds-level) schedule, stopped by real
signals, against a real SQLite store and Maildir; the job store is APScheduler's own."""

from __future__ import annotations

import json
import signal
from datetime import datetime, timedelta

import pytest
from sqlalchemy import create_engine, inspect

from publisher import config as configuration
from publisher import scheduler
from publisher.store import Store
from tests.daemon import EVERY_SECOND, NEVER_SOON, configure, job_outcome, plant_missed_digest
from tests.mailserver import smtp_site
from tests.sites import demo_site, edit_config, recipients
from tests.waiting import wait_until


def test_run_delivers_the_digest_once_and_stops_on_sigterm(any_store, run_publish, daemons):
    site = any_store
    configure(site)
    run_publish(site, "subscribers", "add", "reader@example.com")
    daemon = daemons(site)
    daemon.wait_for("digest 20")  # the first scheduled run created and sent a digest
    daemon.wait_for("0 new, 0 updated, 9 unchanged")  # and a later run found nothing new
    code, took = daemon.stop(signal.SIGTERM)
    assert code == 0, daemon.log
    assert took < 5
    assert "scheduler stopped" in daemon.log
    assert recipients(site) == ["reader@example.com"]

    again = daemons(site)  # a restart resends nothing
    again.wait_for("0 new, 0 updated, 9 unchanged")
    code, _ = again.stop(signal.SIGINT)
    assert code == 0
    assert recipients(site) == ["reader@example.com"]

    status = run_publish(site, "status").stdout
    assert "scheduler: not running" in status
    assert "digest   * * * * * *" in status and "ok in" in status
    assert "source seeds: 9 articles seen" in status
    store_url = configuration.load(site / "config.toml").store_url
    assert scheduler.JOBS_TABLE in inspect(create_engine(store_url)).get_table_names()  # the site's store


def test_log_lines_carry_timestamps_or_are_json(site, daemons):
    configure(site, digest=NEVER_SOON)
    text = daemons(site)
    line = text.wait_for("next run")
    datetime.strptime(line[:19], "%Y-%m-%d %H:%M:%S")
    assert text.stop()[0] == 0
    js = daemons(site, "--log-format", "json")
    js.wait_for("next run")
    assert js.stop()[0] == 0
    records = [json.loads(line) for line in js.lines]
    assert {"time", "level", "logger", "message"} <= set(records[0])
    assert any(r["message"] == "scheduler stopped" for r in records)


def test_a_second_scheduler_stands_by_until_the_first_is_gone(site, run_publish, daemons):
    configure(site, digest=NEVER_SOON)
    first = daemons(site)
    first.wait_for("next run")
    second = daemons(site)
    line = second.wait_for("standing by")
    assert "publish run on" in line and f"pid {first.proc.pid}" in line
    assert f"pid {first.proc.pid}" in run_publish(site, "status").stdout
    assert first.stop()[0] == 0
    second.wait_for("taking over")
    second.wait_for("next run")
    assert f"pid {second.proc.pid}" in run_publish(site, "status").stdout
    assert second.stop()[0] == 0


def test_a_digest_missed_within_the_grace_is_sent_once_on_start(site, run_publish, daemons):
    configure(site, digest=NEVER_SOON, extra="\ngrace = 3600")
    run_publish(site, "subscribers", "add", "reader@example.com")
    plant_missed_digest(site, timedelta(minutes=10))
    daemon = daemons(site)
    daemon.wait_for("missed while no scheduler ran")
    daemon.wait_for("1 sent")
    wait_until(lambda: job_outcome(site, "digest") == "ok", what="the digest's run recorded")
    assert daemon.stop()[0] == 0
    assert recipients(site) == ["reader@example.com"]
    assert "next: 20" in run_publish(site, "status").stdout


def test_a_digest_missed_beyond_the_grace_is_skipped_and_logged(site, run_publish, daemons):
    configure(site, digest=NEVER_SOON, extra="\ngrace = 600")
    run_publish(site, "subscribers", "add", "reader@example.com")
    plant_missed_digest(site, timedelta(hours=2))
    daemon = daemons(site)
    line = daemon.wait_for("more than schedule.grace")
    assert "digest" in line and "missed by 2 h" in line
    wait_until(lambda: job_outcome(site, "digest") == "missed", what="the missed run recorded")
    assert daemon.stop()[0] == 0
    assert recipients(site) == []
    status = run_publish(site, "status").stdout
    assert "missed in 0.0 s" in status


def test_an_edited_schedule_replaces_the_stored_one(site, run_publish, daemons):
    configure(site, digest=NEVER_SOON)
    d = daemons(site)
    d.wait_for("next run")
    assert d.stop()[0] == 0
    edit_config(site, 'digest = "0 0 1 1 *"', 'digest = "0 7 * * 1-5"')
    d = daemons(site)
    line = d.wait_for("digest: next run")
    assert "T07:00:00+09:00" in line
    assert d.stop()[0] == 0
    when = datetime.fromisoformat(line.rsplit(" ", 1)[1])
    assert when.weekday() < 5  # cron 1-5 is Monday to Friday (APScheduler counts differently)


def test_cron_weekdays_follow_standard_cron(site):
    cfg = configuration.load(site / "config.toml")
    start = datetime(2026, 1, 1, tzinfo=cfg.tz)  # a Thursday
    for expr, weekdays in [("0 7 * * 0", {6}), ("0 7 * * 7", {6}), ("0 7 * * 1-5", {0, 1, 2, 3, 4})]:
        trig = scheduler._trigger(
            configuration.Config(cfg.path, cfg.root, site=cfg.site, schedule=_schedule(expr)), "digest"
        )
        assert trig is not None
        seen, t = set(), start
        for _ in range(14):
            t = trig.get_next_fire_time(None, t + timedelta(seconds=1))
            seen.add(t.weekday())
        assert seen == weekdays, expr


def _schedule(digest: str) -> configuration.ScheduleConfig:
    return configuration.ScheduleConfig(digest=digest)


@pytest.mark.parametrize(
    "cron, command, problem",
    [('"0 7 * *"', "run", "5 fields"), ('"0 7 * * 8"', "status", "weekday")],
    ids=["four fields", "weekday 8"],
)
def test_a_bad_cron_is_a_config_error_for_every_command(site, run_publish, cron, command, problem):
    configure(site, digest=cron)
    result = run_publish(site, command, check=False)
    assert result.returncode == 2
    assert "schedule.digest" in result.stderr and problem in result.stderr


def test_start_background_runs_the_timetable_in_process_and_shuts_down(site, run_publish, daemons, caplog):
    """What `publish serve --scheduler` uses: the same scheduler in a thread."""
    configure(site, digest=NEVER_SOON)
    run_publish(site, "subscribers", "add", "reader@example.com")
    other = daemons(site)  # a `publish run` already keeps this site's (slow) timetable
    other.wait_for("next run")
    edit_config(site, f"digest = {NEVER_SOON}", f"digest = {EVERY_SECOND}")
    cfg = configuration.load(site / "config.toml")
    handle = scheduler.start_background(cfg)
    try:
        wait_until(lambda: "standing by" in caplog.text, what="the in-process scheduler standing by")
        assert not handle.running.is_set()
        assert recipients(site) == []
        assert other.stop()[0] == 0
        assert handle.running.wait(10)
        wait_until(lambda: len(recipients(site)) == 1)
    finally:
        handle.shutdown(timeout=10)
    assert handle.done.is_set() and handle.error is None
    store = Store.open(cfg.store_url)
    assert scheduler.scheduler_holder(store) is None
    store.close()
    assert recipients(site) == ["reader@example.com"]


def test_stopping_one_scheduler_leaves_another_in_the_same_process_sending(
    tmp_path, run_publish, mail_server
):
    """Each scheduler hands its jobs its own stop: stopping one (a site's `serve
    --scheduler` shutting down) does not interrupt another site's digest in this process."""
    quiet = demo_site(tmp_path / "quiet")
    configure(quiet, digest=NEVER_SOON)
    busy = demo_site(tmp_path / "busy")
    configure(busy, digest=EVERY_SECOND)
    readers = [f"reader{i}@example.com" for i in range(12)]
    (busy / "readers.csv").write_text("email\n" + "\n".join(readers) + "\n", encoding="utf-8")
    run_publish(busy, "subscribers", "import", str(busy / "readers.csv"))
    cfg = smtp_site(busy, mail_server.port, smtp_extra="rate = 4\n")  # 3 s of sending
    first = scheduler.start_background(configuration.load(quiet / "config.toml"))
    second = scheduler.start_background(cfg)
    try:
        assert first.running.wait(10) and second.running.wait(10)
        wait_until(lambda: len(mail_server.handler.received) >= 2, what="the busy site sending")
        first.shutdown(timeout=10)
        wait_until(lambda: _last_run(cfg) is not None, timeout=30, what="the busy site's digest run")
    finally:
        first.shutdown(timeout=10)
        second.shutdown(timeout=10)
    assert _last_run(cfg) == "ok"
    assert sorted(a for r in mail_server.handler.received for a in r.rcpt_tos) == sorted(readers)


def _last_run(cfg: configuration.Config) -> str | None:
    store = Store.of(cfg)
    try:
        return next((r.outcome for r in store.runs.last() if r.job == "digest"), None)
    finally:
        store.close()


def test_serve_with_scheduler_keeps_the_timetable_and_stops_cleanly(site, run_publish, daemons):
    """`publish serve --scheduler`: one process answers HTTP and sends the digest once."""
    import socket

    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    configure(site)
    run_publish(site, "subscribers", "add", "reader@example.com")
    server = daemons(site, "--port", str(port), "--no-access-log", command=("serve", "--scheduler"))
    server.wait_for("digest 20")
    server.wait_for("Application startup complete")
    assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    blocked = daemons(site)  # a second scheduler on the same site stands by
    blocked.wait_for("standing by")
    assert blocked.stop()[0] == 0
    code, took = server.stop(signal.SIGTERM)
    assert code == 0, server.log
    assert took < 10
    assert recipients(site) == ["reader@example.com"]
