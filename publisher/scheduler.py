"""The scheduler: run the pipeline on the ``[schedule]`` timetable (APScheduler 3.x).

Promises:
- Jobs live in APScheduler's SQLAlchemy job store inside the site's own database, and
  are replaced from the configuration at every start, so an edited schedule takes
  effect; a run missed while no scheduler was running is kept if the schedule did not
  change, and then runs once on start when it is late by less than ``schedule.grace``
  seconds, or is skipped, logged and recorded as ``missed`` when later than that.
- Missed runs are coalesced into one; a job never runs twice at the same time.
- One scheduler per site: a lock (``locks.SCHEDULER_LOCK``) is held and renewed while it
  runs; a second ``publish run`` (or ``publish serve --scheduler``) stands by, says
  so, and takes over when the first is gone.
- Every job takes the site's one lock (``pipeline.site_lock``) to collect, make issues
  and write feeds, so a scheduled digest and an editor's ``publish now`` never make the
  same issue twice; their sending shares the queue by claims (each reader gets one
  copy), in ``delivery.workers`` processes that stop with the scheduler.
- Stopping (SIGTERM, SIGINT, ``SchedulerHandle.shutdown``) takes no new jobs, lets the
  message being sent finish, records the run, releases the locks.

APScheduler is used only here. Job functions are top-level and take the config path,
so the job store keeps a plain reference to them; the executor hands each run its
scheduler's stop event (which no job store could keep).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

from apscheduler.events import EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from publisher import config as configuration
from publisher import cron, pipeline
from publisher.config import Config
from publisher.errors import ConfigError, PublisherError, Stopped
from publisher.locks import SCHEDULER_LOCK, Lock
from publisher.pipeline import EVERYTHING, Step
from publisher.store import Store

log = logging.getLogger(__name__)

JOBS_TABLE = "scheduler_jobs"
JOB_LOCK_WAIT = 6 * 3600.0  # a scheduled job waits its turn behind another writer
STANDBY_POLL = 1.0


# -- the jobs ---------------------------------------------------------------------------


def collect_job(config_path: str, stop: threading.Event | None = None) -> None:
    """Scheduled: collect and rebuild feeds and pages; then the issues of the
    "instant" newsletters that have something new (each at most every min_interval)."""
    _run_job("collect", config_path, (Step.COLLECT, Step.BUILD), stop, instant=True)


def digest_job(config_path: str, newsletter: str = "digest", stop: threading.Event | None = None) -> None:
    """Scheduled: collect, rebuild, then send the next issue of one newsletter."""
    _run_job(newsletter, config_path, EVERYTHING, stop, newsletters=(newsletter,))


JOB_FUNCTIONS = {"collect": collect_job}  # and digest_job for each scheduled newsletter
INSTANT = "instant"  # a newsletter's schedule: after each collect


def _run_job(
    job: str,
    config_path: str,
    steps: tuple[Step, ...],
    stop: threading.Event | None,
    *,
    newsletters: tuple[str, ...] = (),
    instant: bool = False,
) -> None:
    started, t0 = datetime.now(UTC), time.monotonic()
    outcome, detail = "ok", ""
    try:
        config = configuration.load(config_path)
    except PublisherError as exc:
        log.error("%s: %s", job, exc)
        return
    if instant:
        newsletters = tuple(n.key for n in config.newsletters if n.schedule == INSTANT)
        if newsletters:
            steps = EVERYTHING
    options = pipeline.Options(
        lock_wait=JOB_LOCK_WAIT,
        what=f"publish run ({job})",
        stop=stop,
        newsletters=newsletters,
        automatic=True,
    )
    try:
        report = pipeline.run(config, options, steps)
        detail = describe(report)
        failure = report.failure()  # the same rule as publish now's exit status
        if failure:
            outcome, detail = "failed", f"{failure}; {detail}"
            log.error("%s failed: %s", job, detail)
        else:
            log.info("%s: %s", job, detail)
    except Stopped:
        outcome, detail = "interrupted", "stopped before it finished; the next run resumes it"
        log.warning("%s: %s", job, detail)
    except PublisherError as exc:
        outcome, detail = "failed", str(exc)
        log.error("%s failed: %s", job, exc)
    except Exception as exc:  # a bug: keep the daemon alive, record and show it
        outcome, detail = "failed", f"{type(exc).__name__}: {exc}"
        log.exception("%s failed", job)
    _record(config, job, started, time.monotonic() - t0, outcome, detail)


def _record(config: Config, job: str, started: datetime, duration: float, outcome: str, detail: str) -> None:
    try:
        store = Store.of(config)
        try:
            store.runs.record(job, started, duration, outcome, detail)
        finally:
            store.close()
    except Exception as exc:
        log.error("could not record the %s run: %s", job, exc)


def describe(report: pipeline.RunReport) -> str:
    """One line about a run, for logs and ``publish status``."""
    parts = []
    if report.collect is not None:
        c = report.collect
        parts.append(f"{c.new} new, {c.updated} updated, {c.unchanged} unchanged, {c.skipped} skipped")
        if c.failed_sources:
            parts.append("failed sources: " + ", ".join(c.failed_sources))
    parts.append(f"{len(report.files_written)} files written")
    for issue in report.issues:
        held = ", held for approval" if issue.state == "held" else ""
        parts.append(f"{issue.key.replace('/', ' ', 1)} ({issue.articles} articles{held})")
    parts += report.waiting
    d = report.delivery
    if d.sent or d.failed or d.queued or d.skipped:
        parts.append(f"{d.sent} sent, {d.failed} failed, {d.queued} queued for retry")
    return "; ".join(parts)


# -- the timetable ----------------------------------------------------------------------


def jobs(config: Config) -> dict[str, tuple[str, str]]:
    """Every job of the timetable: {name: (schedule, where it is configured)}:
    ``collect`` and one per newsletter, named by its key ("" = by hand only,
    "instant" = after each collect: neither is a job of its own)."""
    found = {"collect": (config.schedule.collect, "schedule.collect")}
    for n in config.newsletters:
        found[n.key] = (n.schedule, _where(config, n.key))
    if not config.newsletters:  # a Config made by hand
        found["digest"] = (config.schedule.digest, "schedule.digest")
    return found


def _where(config: Config, key: str) -> str:
    return "schedule.digest" if key == "digest" else f"newsletters.{key}.schedule"


def triggers(config: Config) -> dict[str, CronTrigger | None]:
    """The cron trigger of each job (None: disabled, by hand, or instant)."""
    return {name: _trigger(config, name) for name in jobs(config)}


def _trigger(config: Config, name: str) -> CronTrigger | None:
    expression, where = jobs(config)[name]
    if expression == INSTANT:
        return None
    try:
        return cron.trigger(expression, config.tz)
    except ValueError as exc:  # config.load checked it; a Config built by hand may not be
        raise ConfigError(config.path, where, str(exc)) from None


@dataclass(frozen=True)
class Planned:
    job: str
    schedule: str  # the cron expression, "" when disabled
    next_run: datetime | None  # in the site timezone
    stored: bool  # True: the running (or last) scheduler's own plan; False: from config


def timetable(config: Config, store: Store) -> list[Planned]:
    """Next run of each job: the job store's plan, or the config's when none is kept."""
    jobstore = SQLAlchemyJobStore(engine=store.engine, tablename=JOBS_TABLE)
    jobstore.start(None, "default")
    kept = {}
    for job in jobstore.get_all_jobs():
        kept[job.id] = job.next_run_time
    now = datetime.now(config.tz)
    plan = []
    schedules = jobs(config)
    for name, trig in triggers(config).items():
        expr = schedules[name][0]
        if trig is None and expr == INSTANT:
            plan.append(Planned(name, INSTANT, None, False))
        elif trig is None:
            plan.append(Planned(name, "", None, False))
        elif name in kept:
            nxt = kept[name]
            plan.append(Planned(name, expr, nxt.astimezone(config.tz) if nxt else None, True))
        else:
            plan.append(Planned(name, expr, trig.get_next_fire_time(None, now), False))
    return plan


def scheduler_holder(store: Store) -> str | None:
    """Who runs the site's scheduler now (None: nobody)."""
    held = store.meta.lock_holder(SCHEDULER_LOCK)
    return held[0] if held else None


# -- running ----------------------------------------------------------------------------


class SchedulerHandle:
    """A scheduler running in a background thread of this process.

    It first stands by while another scheduler holds the site, then runs the jobs;
    ``shutdown()`` stops it cleanly (no new jobs, the current message finishes)."""

    def __init__(self, config: Config, what: str) -> None:
        self.config = config
        self.what = what
        self.running = threading.Event()  # set once this process runs the timetable
        self.done = threading.Event()  # set when the thread has ended
        self.error: str | None = None  # why it ended on its own, if it did
        self._stop = threading.Event()  # set: no new jobs; the running one stops between two messages
        self._store: Store | None = None  # opened by start, in the caller's thread
        self._thread = threading.Thread(target=self._main, name="scheduler", daemon=True)

    def start(self) -> SchedulerHandle:
        triggers(self.config)  # a bad schedule is a config error now, not in a thread
        self._store = Store.of(self.config)  # so is a store that cannot be used
        self._thread.start()
        return self

    def request_stop(self) -> None:
        """Ask to stop (safe from a signal handler); ``shutdown`` waits for it."""
        self._stop.set()

    def shutdown(self, timeout: float | None = None) -> None:
        self.request_stop()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _main(self) -> None:
        store = self._store
        assert store is not None
        lock = Lock(store.meta, SCHEDULER_LOCK, self.what, float(self.config.store.lease))
        try:
            try:
                if self._stand_by(lock):
                    self._serve(store, lock)
            finally:
                lock.release()
        except PublisherError as exc:  # the store became unusable (locked, full, damaged): one line
            self.error = str(exc)
            log.error("the scheduler stopped: %s", exc)
        except Exception as exc:  # a bug: its traceback helps
            self.error = f"{type(exc).__name__}: {exc}"
            log.exception("the scheduler stopped")
        finally:
            store.close()
            self.done.set()

    def _stand_by(self, lock: Lock) -> bool:
        announced = None
        while (holder := lock.try_acquire()) is not None:
            if holder != announced:
                log.warning("another scheduler runs this site (%s); standing by until it is gone", holder)
                announced = holder
            if self._stop.wait(STANDBY_POLL):
                return False
        if announced:
            log.info("the other scheduler is gone; taking over")
        return True

    def _serve(self, store: Store, lock: Lock) -> None:
        config = self.config
        sched = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=store.engine, tablename=JOBS_TABLE)},
            executors={"default": _Executor(len(jobs(config)), self._stop)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": config.schedule.grace},
            timezone=config.tz,
        )
        sched.add_listener(lambda event: self._missed(store, event), EVENT_JOB_MISSED)
        sched.start(paused=True)
        try:
            _replace_jobs(sched, config)
            sched.resume()
            self.running.set()
            for job in sched.get_jobs():
                log.info(
                    "%s: next run %s", job.id, job.next_run_time.isoformat() if job.next_run_time else "-"
                )
            while not self._stop.wait(0.5):
                if lock.lost.is_set():
                    self.error = "lost the scheduler lock to another scheduler"
                    log.error("%s; stopping", self.error)
                    self._stop.set()
                    break
        finally:
            log.info("stopping: no new jobs; waiting for the current one to finish")
            sched.shutdown(wait=True)
            log.info("scheduler stopped")

    def _missed(self, store: Store, event: JobExecutionEvent) -> None:
        late = datetime.now(UTC) - event.scheduled_run_time
        detail = (
            f"the run due at {event.scheduled_run_time.astimezone(self.config.tz).isoformat()} was missed "
            f"by {_duration(late)}, more than schedule.grace ({self.config.schedule.grace} s): skipped"
        )
        log.warning("%s: %s", event.job_id, detail)
        store.runs.record(event.job_id, datetime.now(UTC), 0.0, "missed", detail)


class _Executor(ThreadPoolExecutor):
    """APScheduler's thread pool, handing every job run the scheduler's stop event."""

    def __init__(self, workers: int, stop: threading.Event) -> None:
        super().__init__(max_workers=workers)
        self.stop = stop

    def submit_job(self, job: Any, run_times: list[datetime]) -> None:
        super().submit_job(_WithStop(job, self.stop), run_times)


class _WithStop:
    """A stored job as run now: its own arguments plus ``stop``."""

    def __init__(self, job: Any, stop: threading.Event) -> None:
        self._job = job
        self.kwargs = {**job.kwargs, "stop": stop}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._job, name)

    def __str__(self) -> str:
        return str(self._job)


def _replace_jobs(sched: BackgroundScheduler, config: Config) -> None:
    """Put the configured jobs in the store, keeping a missed run of an unchanged one."""
    now = datetime.now(config.tz)
    wanted = triggers(config)
    for job in sched.get_jobs():
        if wanted.get(job.id) is None:
            sched.remove_job(job.id)
    for name, trig in wanted.items():
        if trig is None:
            continue
        try:
            old = sched.get_job(name)
        except Exception:  # a job pickled by an incompatible version: replace it
            old = None
        keep = {}
        if (
            old is not None
            and repr(old.trigger) == repr(trig)
            and old.next_run_time is not None
            and old.next_run_time <= now
        ):
            keep["next_run_time"] = old.next_run_time
            log.info("%s: its run due at %s was missed while no scheduler ran", name, old.next_run_time)
        sched.add_job(
            JOB_FUNCTIONS.get(name, digest_job),
            trig,
            args=[str(config.path)] if name in JOB_FUNCTIONS else [str(config.path), name],
            id=name,
            name=name,
            replace_existing=True,
            **keep,
        )


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    hours, rest = divmod(seconds, 3600)
    return f"{hours} h {rest // 60} min" if hours else f"{rest // 60} min {rest % 60} s"


def start_background(config: Config, what: str = "publish serve --scheduler") -> SchedulerHandle:
    """Run the scheduler in a thread of this process (for ``publish serve --scheduler``);
    call ``.shutdown()`` on the handle when the server stops."""
    return SchedulerHandle(config, what).start()


def run_forever(config: Config) -> int:
    """``publish run``: the scheduler in the foreground until SIGTERM or SIGINT; the
    exit status (0 after a clean stop)."""
    triggers(config)  # a bad schedule stops here with a config error
    handle = SchedulerHandle(config, "publish run")

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s", signal.Signals(signum).name)
        handle.request_stop()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        handle.start()
        while not handle.done.wait(0.5):
            pass
    finally:
        handle.shutdown()
        for sig, old in previous.items():
            signal.signal(sig, old)
    return 1 if handle.error else 0
