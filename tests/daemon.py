"""The long-running processes of a site as tests drive them: ``publish run`` (or
``publish serve --scheduler``) whose log is read line by line, a seconds-level
timetable for it, a job store left as a stopped scheduler would leave it, and the
outcome of a job's last recorded run.

The ``daemons`` fixture in tests/conftest.py starts them and kills leftovers."""

from __future__ import annotations

import signal
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from publisher import config as configuration
from publisher import scheduler
from publisher.store import Store
from tests.sites import edit_config, start_publish

EVERY_SECOND = '"* * * * * *"'
NEVER_SOON = '"0 0 1 1 *"'  # once a year: never fires during a test


def configure(site: Path, digest: str = EVERY_SECOND, collect: str = NEVER_SOON, extra: str = "") -> None:
    """Set the demo site's ``[schedule]`` (cron strings as TOML values) plus extra lines."""
    edit_config(site, 'collect = "*/15 * * * *"', f"collect = {collect}")
    edit_config(site, 'digest = "0 7 * * *"', f"digest = {digest}{extra}")


class Daemon:
    """A ``publish run`` process whose stderr is collected line by line."""

    def __init__(self, site: Path, *args: str, command: tuple[str, ...] = ("run",)) -> None:
        self.lines: list[str] = []
        self.proc = start_publish(site, *command, *args)
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
        """The first log line holding ``text``, once it is logged."""
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
        """Send ``sig``; the exit code and how long the process took to exit."""
        started = time.monotonic()
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code, time.monotonic() - started

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


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


def job_outcome(site: Path, job: str) -> str | None:
    """How the last recorded run of ``job`` ended (ok, failed, missed, interrupted), if any."""
    store = Store.open(configuration.load(site / "config.toml").store_url)
    try:
        return next((run.outcome for run in store.runs.last() if run.job == job), None)
    finally:
        store.close()
