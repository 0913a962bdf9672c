"""The whole run, as a story: collect -> digest record -> feeds and pages -> delivery.

The stages never import each other; they meet here. The CLI, the scheduler and the
web server call ``run`` with the ``Step``s they want and print or log the report.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from publisher import deliverability, feeds, issues, output, senders, site, websub
from publisher.checks import Check
from publisher.collect import CollectReport, collect
from publisher.config import Config, Newsletter
from publisher.delivery import transports
from publisher.delivery.sender import SendPolicy, SendReport, send_queued
from publisher.delivery.unwell import Streak
from publisher.errors import OutputError, Stopped
from publisher.issues import IssueReport
from publisher.links import Links
from publisher.locks import SITE_LOCK, Lock
from publisher.messages import Messages
from publisher.output import Writer
from publisher.store import Store, servers
from publisher.store.ledger import Fence

log = logging.getLogger(__name__)


class Step(StrEnum):
    """What a run does; ``run`` does the steps it is given, always in this order."""

    COLLECT = "collect"  # read the sources into the store
    DIGEST = "digest"  # select, render and record the next digest (or only preview it)
    BUILD = "build"  # write the feeds and the web edition (the digest archive too)
    SEND = "send"  # deliver every queued digest, oldest first


EVERYTHING = (Step.COLLECT, Step.DIGEST, Step.BUILD, Step.SEND)


@dataclass
class Options:
    dry_run: bool = False  # on a scratch copy of the store, writing and sending nothing
    preview: str | None = None  # write the digest HTML here, record nothing
    progress: Callable[[int, int], None] | None = None  # (done, total) while sending
    reading: Callable[[int], None] | None = None  # (files or entries read) while collecting
    lock_wait: float | None = None  # seconds to wait for another writer; None: store.lock_wait
    what: str = "publish now"  # who holds the lock, as others are told
    stop: threading.Event | None = None  # set: finish the current message, then stop
    newsletters: tuple[str, ...] = ()  # the next issue of these newsletters only (default: every one)
    automatic: bool = False  # a scheduled run: each newsletter's min_interval is kept
    workers: int | None = None  # sender processes; None: delivery.workers


@dataclass
class RunReport:
    collect: CollectReport | None = None
    files_written: list[str] = field(default_factory=list)
    files_unchanged: int = 0
    digest: str | None = None  # the key of the (first) issue created in this run
    digest_articles: int = 0
    issues: list[IssueReport] = field(default_factory=list)  # every issue created (or previewed)
    waiting: list[str] = field(default_factory=list)  # newsletters that made no issue, and why
    delivery: SendReport = field(default_factory=SendReport)
    dry_run: bool = False
    checks: list[Check] = field(default_factory=list)  # --dry-run / --preview: the editor's checks
    output_error: str | None = None  # the web edition could not be written (mail still went out)

    def failure(self) -> str | None:
        """Why this run failed, or None: the one rule behind ``publish now``'s exit
        status and the outcome ``publish status`` shows for a scheduled run.

        A run failed when every source failed (nothing was read: no article new,
        updated or unchanged), when the feeds and pages could not be written, or when
        there was mail to deliver and none of it got through (every delivery failed
        or stayed queued), or the server refused the message itself. One failed source among working ones, some failed
        deliveries among sent ones: the run did its work, and says what went wrong."""
        c = self.collect
        if c is not None and c.failed_sources and not (c.new or c.updated or c.unchanged):
            return "every source failed: " + ", ".join(c.failed_sources)
        if self.output_error:
            return self.output_error
        d = self.delivery
        if d.halted:  # the server refused the message itself: nobody's bounce, nothing more sent
            return f"{d.halted}; no address was blamed, {d.left} stay queued for the next run"
        if (d.left or d.failed) and not d.sent:
            reason = d.paused[0] if d.paused else ""  # a provider refusing our mail says most
            reason = reason or next(
                (e for e in d.errors if "in a row" not in e), d.errors[0] if d.errors else ""
            )
            counts = [f"{d.failed} failed"] if d.failed else []
            counts += [f"{d.left} stay queued for the next run"] if d.left else []  # tried or not
            return f"no digest was delivered, {' and '.join(counts)}: {reason}"
        return None


def run(config: Config, options: Options, steps: Collection[Step] = EVERYTHING) -> RunReport:
    if Step.SEND in steps and (options.dry_run or options.preview):
        raise ValueError("a dry run or a preview sends nothing: leave Step.SEND out")
    report = RunReport(dry_run=options.dry_run)
    newsletters = issues.chosen(config, options.newsletters)  # an unknown key stops here
    now = datetime.now(UTC)
    several = Step.SEND in steps and _processes(config, options.workers) > 1
    with Store.scratch_copy(config) if options.dry_run else Store.of(config) as store:
        if set(steps) - {Step.SEND}:  # writing the site's content: under its lock
            with site_lock(store, dry_run=options.dry_run, **_lock(config, options)) as lock:
                if Step.COLLECT in steps:
                    report.collect = collect(config, store, now, options.reading)
                if Step.DIGEST in steps:
                    lock.check()  # lost meanwhile (paused past the lease): another run may make this issue
                    prepare_digest(config, store, now, options, report, newsletters, lock.fence)
                if several and store.ledger.unfinished():  # only once there is something to send:
                    senders.warm()  # the sender processes' code imported beside the feeds
                if Step.BUILD in steps:
                    lock.check()
                    try:
                        write_outputs(config, store, now, options, report)
                    except OutputError as exc:  # a full or read-only output folder must not stop the mail
                        if Step.SEND not in steps:
                            raise
                        report.output_error = str(exc)
                        log.info("%s; delivering the digest anyway", exc)  # the run then fails with it
        if Step.SEND in steps:  # no site lock: the claims keep senders apart (collect never waits)
            deliver(config, store, report, options.progress, options.stop, options.workers)
    return report


def prepare_digest(
    config: Config,
    store: Store,
    now: datetime,
    options: Options,
    report: RunReport,
    newsletters: Sequence[Newsletter] | None = None,
    fence: Fence | None = None,
) -> None:
    """Select and render the next issue of each newsletter; record it and its queue
    unless previewing (``publisher.issues``), each in a transaction ``fence`` (the site
    lock's) lets commit only while the lock is still held."""
    done = issues.prepare(
        config,
        store,
        now,
        list(config.newsletters) if newsletters is None else newsletters,
        preview=options.preview,
        dry_run=options.dry_run,
        automatic=options.automatic,
        fence=fence,
    )
    report.issues, report.waiting, report.checks = done.issues, done.waiting, done.checks
    if done.issues:
        report.digest, report.digest_articles = done.issues[0].key, done.issues[0].articles
    for line in done.waiting:
        log.info("%s", line)


def write_outputs(config: Config, store: Store, now: datetime, options: Options, report: RunReport) -> int:
    """Build the feeds and the web edition whole into output.dir, one build at a time on
    this machine (``output.building``); return the store's content version it shows
    (read before the articles, so a change made meanwhile is built again later)."""
    with nullcontext() if options.dry_run else output.building(config.output.dir):
        version = store.meta.content_version()
        published = store.articles.published(now)
        with Writer(config.output.dir, dry_run=options.dry_run, complete=True, version=version) as writer:
            changed_feeds = [
                path for path, data in feeds.build(config, published).items() if writer.write(path, data)
            ]
            writer.write_all(site.build(config, published, store.ledger.all_digests()).items())
    report.files_written = writer.written
    report.files_unchanged = len(writer.unchanged)
    if config.feeds.websub_hub and changed_feeds and not options.dry_run:
        links = Links(config.site.base_url)
        websub.announce(config.feeds.websub_hub, [links.url(path) for path in changed_feeds])
    return version


def deliver(
    config: Config,
    store: Store,
    report: RunReport,
    progress: Callable[[int, int], None] | None = None,
    stop: threading.Event | None = None,
    workers: int | None = None,
) -> None:
    """Send every queued delivery of every unfinished issue, oldest issue first, in
    ``workers`` sender processes (default ``delivery.workers``; one per core), each
    claiming batches of the queue (``store.claims``), so any number of them, here or on
    other machines, send each delivery once. No more processes send than there are
    claims' worth of deliveries queued; one of them is this process.

    Once ``stop`` is set, the messages in flight finish, the rest stay queued for the
    next run, and ``Stopped`` is raised."""
    pending = store.ledger.unfinished()
    if not pending:
        return
    total = sum(store.ledger.queued_count(record.id) for record in pending)
    count = max(1, min(_processes(config, workers), -(-total // SendPolicy.claim_size)))
    count = servers.senders_that_fit(store.engine, count)  # fewer, or none, before a server refuses them
    shown = None if progress is None else lambda done: progress(done, total)
    if count == 1:
        if not send_here(config, store, report.delivery, shown, stop):
            raise Stopped()
        return
    # one count of temporary failures in a row for all of them: an unwell server stops the run
    streak = Streak.shared()

    def here(progress: Callable[[int], None], stop: threading.Event) -> tuple[SendReport, bool]:
        """This process's share, on the store it has open (count - 1 processes start)."""
        report = SendReport()
        return report, not send_here(config, store, report, progress, stop, count, streak)

    sent = senders.run(_sender, (config, count, streak), count, shown, stop, here)
    report.delivery.add(sent.report)
    # once every sender here ended: what is still queued, and held by senders elsewhere
    state = [store.ledger.queue_state(record.id) for record in pending]
    report.delivery.elsewhere = sum(held for _, held in state)
    report.delivery.left = sum(queued - held for queued, held in state)
    if sent.stopped:
        raise Stopped()


def _processes(config: Config, workers: int | None) -> int:
    """The sender processes wanted (``--workers``, ``delivery.workers``, else one per core):
    at most, fewer when less is queued."""
    return workers or config.delivery.workers or os.cpu_count() or 1


def send_here(
    config: Config,
    store: Store,
    report: SendReport,
    progress: Callable[[int], None] | None = None,
    stop: threading.Event | None = None,
    processes: int = 1,
    streak: Streak | None = None,
) -> bool:
    """Send every unfinished issue's queued deliveries in this process (its share of
    them, beside other senders; one of ``processes`` sharing ``delivery.smtp.rate``),
    ``progress(done)`` after each commit; False: ``stop`` was set before it finished.
    ``streak``: the run's temporary failures in a row (``delivery.unwell``), shared with
    the run's other sender processes; else this call's own, over every issue it sends."""
    pending = store.ledger.unfinished()
    if not pending:
        return True
    factory, connections = transports(config.delivery)
    d = config.delivery
    policy = SendPolicy(
        connections,
        d.retries,
        d.retry_delay,
        d.bounce_limit,
        d.smtp.rate / processes,
        claim_ttl=float(config.store.lease),
    )
    messages = Messages.for_site(config, store)
    gate = deliverability.gate_for(config, store)  # one per run: a paused provider stays paused
    titles = {n.key: n.title for n in config.newsletters}
    tally = _Tally(progress)
    streak = streak or Streak()
    for record in pending:
        parts = store.ledger.parts(record.id)
        if not parts:
            store.ledger.finish(record.id)
        for part in parts:
            shown = replace(record, subject=part.subject, html=part.html, text=part.text)
            part_report = send_queued(
                store.ledger.part(record.id, part.id, record.newsletter),
                record.id,
                lambda sub, issue=record.id: messages.envelope(issue, sub),
                messages.digest(shown, record.newsletter, titles.get(record.newsletter)),
                factory,
                policy,
                tally.part(),
                stop,
                gate,
                streak,
            )
            report.add(part_report)
            if stop is not None and stop.is_set():
                return False
            if part_report.halted:
                return True  # the server refuses the message itself: the rest stays queued
    return True


def _sender(
    work: tuple[Config, int, Streak], progress: Callable[[int], None], stop: threading.Event
) -> tuple[SendReport, bool]:
    """A sender process's work (``publisher.senders``): its share of every unfinished
    issue, as one of ``processes`` sharing ``streak``."""
    config, processes, streak = work
    report = SendReport()
    with Store.of(config) as store:
        finished = send_here(config, store, report, progress, stop, processes, streak)
    return report, not finished


class _Tally:
    """One count over every part this process sends: each ``send_queued`` reports its
    own part's (done, total), ``progress`` gets the messages done in all of them."""

    def __init__(self, progress: Callable[[int], None] | None) -> None:
        self.progress = progress
        self.before = self.last = 0

    def part(self) -> Callable[[int, int], None] | None:
        """The progress callback of the next part."""
        self.before += self.last
        self.last = 0
        return None if self.progress is None else self._report

    def _report(self, done: int, _total: int) -> None:
        self.last = done
        assert self.progress is not None
        self.progress(self.before + done)


def approve(config: Config, issue_key: str, options: Options) -> RunReport:
    """``publish issues approve``: queue a held issue for its readers and send it."""
    report = RunReport()
    now = datetime.now(UTC)
    with Store.of(config) as store:
        with site_lock(store, **_lock(config, options)) as lock:
            issues.approve(config, store, issue_key, now, lock.fence)
        deliver(config, store, report, options.progress, options.stop, options.workers)
    return report


def skip(config: Config, issue_key: str, options: Options) -> None:
    """``publish issues skip``: discard a held issue; its articles wait for the next one."""
    with Store.of(config) as store, site_lock(store, **_lock(config, options)) as lock:
        issues.skip(config, store, issue_key, lock.fence)


def _lock(config: Config, options: Options) -> dict[str, Any]:
    """How a command takes the site lock: how long it waits for another writer, how long
    its hold lasts unrenewed, the name others are told, and what stops it."""
    wait = config.store.lock_wait if options.lock_wait is None else options.lock_wait
    return {"wait": wait, "ttl": config.store.lease, "what": options.what, "stop": options.stop}


@contextmanager
def site_lock(
    store: Store,
    *,
    dry_run: bool = False,
    wait: float = 10.0,
    ttl: float = 60.0,
    what: str = "publish",
    stop: threading.Event | None = None,
) -> Iterator[Lock | _Unlocked]:
    """The one lock every writer of a site's content shares (``publisher.locks``);
    ``check()`` on what it yields raises ``LockLost`` once it was taken meanwhile."""
    if dry_run:
        yield _Unlocked()
        return
    lock = Lock(store.meta, SITE_LOCK, what, ttl)
    lock.acquire(wait, stop)
    try:
        yield lock
    finally:
        lock.release()


class _Unlocked:
    """A dry run's site lock: it works on a scratch copy nobody else writes."""

    def check(self) -> None:
        pass

    def fence(self, conn: Any) -> None:
        pass
