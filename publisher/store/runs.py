"""The last run of each scheduled job: when, how long, and how it ended."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, insert, select, update

from publisher.models import JobRun
from publisher.store.schema import job_runs


class JobRuns:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(self, job: str, started: datetime, duration: float, outcome: str, detail: str = "") -> None:
        """Keep ``job``'s latest run, replacing the one before."""
        values = {"started": started, "duration": duration, "outcome": outcome, "detail": detail}
        with self.engine.begin() as conn:
            done = conn.execute(update(job_runs).where(job_runs.c.job == job).values(**values))
            if done.rowcount == 0:
                conn.execute(insert(job_runs).values(job=job, **values))

    def last(self) -> list[JobRun]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(job_runs).order_by(job_runs.c.job)).all()
        return [JobRun(r.job, r.started, r.duration, r.outcome, r.detail) for r in rows]
