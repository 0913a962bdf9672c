"""What ``publish status`` shows, asked of the store in one place: the scheduler and
its timetable with each job's last run, every source's health, the site lock, and
counts of articles, subscribers, digests and deliveries. The CLI renders it as text
or as JSON (``publish status --json``); it prints nothing itself."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from publisher import cron, deliverability, scheduler
from publisher.config import Config, Newsletter
from publisher.deliverability import Report
from publisher.locks import SITE_LOCK
from publisher.models import JobRun
from publisher.store import Store

RECENT_DIGESTS = 5


@dataclass(frozen=True)
class JobStatus:
    job: str
    schedule: str  # the cron expression, "" when disabled
    next_run: datetime | None  # in the site's timezone
    last: JobRun | None  # None: never run by the scheduler


@dataclass(frozen=True)
class SourceHealth:
    source: str
    articles: int  # seen, withdrawn ones included
    newest: datetime | None  # when the newest of them was first collected
    read: bool  # False: no read of it was recorded yet (the fields below say nothing)
    checked: datetime | None = None  # the last read
    ok: bool = True
    error: str | None = None  # why the last read failed
    succeeded: datetime | None = None  # the last good read


@dataclass(frozen=True)
class DigestStatus:
    key: str
    status: str
    subject: str
    deliveries: dict[str, int]  # status -> count


@dataclass(frozen=True)
class Issue:
    key: str  # <newsletter>/<YYYY-MM-DD>[-N]
    status: str  # held | sending | done | skipped
    created: datetime


@dataclass(frozen=True)
class NewsletterStatus:
    key: str
    title: str
    schedule: str  # a cron expression, "instant" (as articles arrive) or "" (by hand only)
    next_run: datetime | None  # of a cron schedule, in the site's timezone
    subscribers: dict[str, int]  # active (its audience), pending, unsubscribed
    last_issue: Issue | None
    held: Issue | None  # the issue waiting for an editor's approval

    def as_dict(self) -> dict[str, Any]:
        return _plain(asdict(self))


@dataclass(frozen=True)
class StatusReport:
    scheduler: str | None  # who runs the site's scheduler now; None: nobody
    jobs: list[JobStatus]
    sources: list[SourceHealth]
    lock: str | None  # who holds the site's lock now; None: nobody
    articles: int  # stored
    published: int  # out now (not embargoed, not withdrawn)
    subscribers: dict[str, int]  # status -> count
    digests: int
    deliveries: dict[str, int]  # status -> count, over every digest
    recent: list[DigestStatus]  # the newest digests first
    held: list[str] = field(default_factory=list)  # issues waiting for an editor's approval
    deliverability: Report | None = None  # per mailbox provider, from what the store knows
    newsletters: list[NewsletterStatus] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON: times in ISO 8601 with their offset."""
        data = _plain(asdict(self))
        data["deliverability"] = self.deliverability.as_dict() if self.deliverability else None
        return data


def build(config: Config, store: Store, now: datetime | None = None) -> StatusReport:
    now = now or datetime.now(UTC)
    runs = {r.job: r for r in store.runs.last()}
    jobs = [
        JobStatus(plan.job, plan.schedule, plan.next_run, runs.get(plan.job))
        for plan in scheduler.timetable(config, store)
    ]
    seen = store.articles.per_source()
    health = {s.source: s for s in store.sources.all()}
    sources = []
    for name in sorted(set(seen) | set(health)):
        articles, newest = seen.get(name, (0, None))
        h = health.get(name)
        if h is None:
            sources.append(SourceHealth(name, articles, newest, read=False))
        else:
            sources.append(SourceHealth(name, articles, newest, True, h.checked, h.ok, h.error, h.succeeded))
    held = store.meta.lock_holder(SITE_LOCK)
    counts = store.articles.counts(now)
    recent = [
        DigestStatus(d.issue_key, d.status, d.subject, store.ledger.delivery_counts(d.id))
        for d in store.ledger.all_digests()[:RECENT_DIGESTS]
    ]
    return StatusReport(
        scheduler=scheduler.scheduler_holder(store),
        jobs=jobs,
        sources=sources,
        lock=held[0] if held else None,
        articles=counts["articles"],
        published=counts["published"],
        subscribers=store.subscribers.counts(),
        digests=counts["digests"],
        deliveries=store.ledger.delivery_counts(),
        recent=recent,
        held=[i.issue_key for n in config.newsletters if (i := store.ledger.held(n.key)) is not None],
        deliverability=deliverability.report(config, store, lookups=False),  # no DNS here
        newsletters=newsletters(config, store, now),
    )


def newsletters(config: Config, store: Store, now: datetime | None = None) -> list[NewsletterStatus]:
    """Every configured newsletter (``publish newsletters``), in the configuration's order."""
    now = (now or datetime.now(UTC)).astimezone(config.tz)
    counts = store.subscriptions.counts([n.key for n in config.newsletters])
    return [
        NewsletterStatus(
            key=n.key,
            title=n.title,
            schedule=n.schedule,
            next_run=next_run(config, n, now),
            subscribers=counts[n.key],
            last_issue=_issue(n.key, store.ledger.last_issue(n.key)),
            held=_issue(n.key, store.ledger.last_issue(n.key, status="held")),
        )
        for n in config.newsletters
    ]


def next_run(config: Config, newsletter: Newsletter, now: datetime) -> datetime | None:
    """When a cron-scheduled newsletter's next issue is due (None: instant, or by hand)."""
    trigger = None if newsletter.schedule == "instant" else cron.trigger(newsletter.schedule, config.tz)
    return trigger.get_next_fire_time(None, now) if trigger is not None else None


def _issue(newsletter: str, found: Any) -> Issue | None:
    return None if found is None else Issue(f"{newsletter}/{found.key}", found.status, found.created)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
