"""`publish run` as a real daemon on a fast (seconds-level) schedule, stopped by real
signals, against a real SQLite store and Maildir; the job store is APScheduler's own."""

from __future__ import annotations

import json
import mailbox
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from publisher import config as configuration
from publisher import scheduler
from publisher.store import Store
from tests.conftest import ROOT

EVERY_SECOND = '"* * * * * *"'
NEVER_SOON = '"0 0 1 1 *"'  # once a year: never fires during a test


def configure(site: Path, digest: str = EVERY_SECOND, collect: str = NEVER_SOON, extra: str = "") -> None:
    cfg = site / "config.toml"
    text = cfg.read_text(encoding="utf-8")
    text = text.replace('collect = "*/15 * * * *"', f"collect = {collect}")
    text = text.replace('digest = "0 7 * * *"', f"digest = {digest}{extra}")
    cfg.write_text(text, encoding="utf-8")


class Daemon:
    """A `publish run` process whose stderr is collected line by line."""

    def __init__(self, site: Path, *args: str, command: tuple[str, ...] = ("run",)) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "publisher", "--config", str(site / "config.toml"), *command, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=site,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, text: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines:
                if text in line:
                    return line
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not logged within {timeout} s; log so far:\n{self.log}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> tuple[int, float]:
        started = time.monotonic()
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code, time.monotonic() - started

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def daemons():
    started: list[Daemon] = []

    def start(site: Path, *args: str, command: tuple[str, ...] = ("run",)) -> Daemon:
        d = Daemon(site, *args, command=command)
        started.append(d)
        return d

    yield start
    for d in started:
        d.kill()


def outbox(site: Path) -> list[str]:
    box = site / "outbox"
    if not box.exists():
        return []
    return [m["To"] for m in mailbox.Maildir(box, create=False)]


def wait_until(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def test_run_delivers_the_digest_once_and_stops_on_sigterm(site, run_publish, daemons):
    configure(site)
    run_publish(site, "subscribers", "add", "reader@example.com")
    daemon = daemons(site)
    daemon.wait_for("digest 20")  # the first scheduled run created and sent a digest
    daemon.wait_for("0 new, 0 updated, 9 unchanged")  # and a later run found nothing new
    code, took = daemon.stop(signal.SIGTERM)
    assert code == 0, daemon.log
    assert took < 5
    assert "scheduler stopped" in daemon.log
    assert outbox(site) == ["reader@example.com"]

    again = daemons(site)  # a restart resends nothing
    again.wait_for("0 new, 0 updated, 9 unchanged")
    code, _ = again.stop(signal.SIGINT)
    assert code == 0
    assert outbox(site) == ["reader@example.com"]

    status = run_publish(site, "status").stdout
    assert "scheduler: not running" in status
    assert "digest   * * * * * *" in status and "ok in" in status
    assert "source seeds: 9 articles seen" in status


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


def plant_missed_digest(site: Path, late: timedelta) -> None:
    """Leave the job store as a scheduler stopped across the digest's time would."""
    from apscheduler.job import Job
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    cfg = configuration.load(site / "config.toml")
    Store.open(cfg.store_url).close()
    jobstore = SQLAlchemyJobStore(url=cfg.store_url, tablename=scheduler.JOBS_TABLE)
    owner = BackgroundScheduler(timezone=cfg.tz)  # never started: only names the job's owner
    jobstore.start(owner, "default")
    jobstore.add_job(
        Job(
            owner,
            id="digest",
            func=scheduler.digest_job,
            args=[str(cfg.path)],
            kwargs={},
            name="digest",
            trigger=scheduler.triggers(cfg)["digest"],
            executor="default",
            misfire_grace_time=1,
            coalesce=True,
            max_instances=1,
            next_run_time=datetime.now(UTC) - late,
        )
    )
    jobstore.shutdown()


def test_a_digest_missed_within_the_grace_is_sent_once_on_start(site, run_publish, daemons):
    configure(site, digest=NEVER_SOON, extra="\ngrace = 3600")
    run_publish(site, "subscribers", "add", "reader@example.com")
    plant_missed_digest(site, timedelta(minutes=10))
    daemon = daemons(site)
    daemon.wait_for("missed while no scheduler ran")
    daemon.wait_for("1 sent")
    time.sleep(0.5)
    assert daemon.stop()[0] == 0
    assert outbox(site) == ["reader@example.com"]
    assert "next: 20" in run_publish(site, "status").stdout


def test_a_digest_missed_beyond_the_grace_is_skipped_and_logged(site, run_publish, daemons):
    configure(site, digest=NEVER_SOON, extra="\ngrace = 600")
    run_publish(site, "subscribers", "add", "reader@example.com")
    plant_missed_digest(site, timedelta(hours=2))
    daemon = daemons(site)
    line = daemon.wait_for("more than schedule.grace")
    assert "digest" in line and "missed by 2 h" in line
    time.sleep(0.5)
    assert daemon.stop()[0] == 0
    assert outbox(site) == []
    status = run_publish(site, "status").stdout
    assert "missed in 0.0 s" in status


def test_an_edited_schedule_replaces_the_stored_one(site, run_publish, daemons):
    configure(site, digest=NEVER_SOON)
    d = daemons(site)
    d.wait_for("next run")
    assert d.stop()[0] == 0
    (site / "config.toml").write_text(
        (site / "config.toml").read_text().replace('digest = "0 0 1 1 *"', 'digest = "0 7 * * 1-5"')
    )
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


def test_a_bad_cron_is_a_config_error(site, run_publish):
    configure(site, digest='"0 7 * *"')
    result = run_publish(site, "run", check=False)
    assert result.returncode == 2
    assert "schedule.digest" in result.stderr and "5 fields" in result.stderr


def test_start_background_runs_the_timetable_in_process_and_shuts_down(site, run_publish, daemons):
    """What `publish serve --scheduler` uses: the same scheduler in a thread."""
    configure(site, digest=NEVER_SOON)
    run_publish(site, "subscribers", "add", "reader@example.com")
    other = daemons(site)  # a `publish run` already keeps this site's (slow) timetable
    other.wait_for("next run")
    cfg_file = site / "config.toml"
    cfg_file.write_text(cfg_file.read_text().replace(f"digest = {NEVER_SOON}", f"digest = {EVERY_SECOND}"))
    cfg = configuration.load(cfg_file)
    handle = scheduler.start_background(cfg)
    try:
        time.sleep(1.5)
        assert not handle.running.is_set()  # standing by
        assert outbox(site) == []
        assert other.stop()[0] == 0
        assert handle.running.wait(10)
        wait_until(lambda: len(outbox(site)) == 1)
    finally:
        handle.shutdown(timeout=10)
    assert handle.done.is_set() and handle.error is None
    store = Store.open(cfg.store_url)
    assert scheduler.scheduler_holder(store) is None
    store.close()
    assert outbox(site) == ["reader@example.com"]


def test_an_impossible_weekday_is_a_config_error(site, run_publish):
    configure(site, digest='"0 7 * * 8"')
    result = run_publish(site, "status", check=False)
    assert result.returncode == 2
    assert "schedule.digest" in result.stderr and "weekday" in result.stderr


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
    assert outbox(site) == ["reader@example.com"]
