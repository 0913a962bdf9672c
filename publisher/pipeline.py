"""The whole run, as a story: collect -> digest record -> feeds and pages -> delivery.

The stages never import each other; they meet here. The CLI, the scheduler and the
web server call ``run`` with the ``Step``s they want and print or log the report.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

import jinja2

from publisher import deliverability, feeds, site, websub
from publisher import digest as digests
from publisher.checks import Check, check_message
from publisher.collect import CollectReport, collect
from publisher.config import Config
from publisher.delivery import transports
from publisher.delivery.sender import SendPolicy, SendReport, send_queued
from publisher.errors import OutputError, PublisherError, Stopped
from publisher.links import Links
from publisher.locks import SITE_LOCK, Lock
from publisher.messages import Messages
from publisher.models import DigestItem, DigestRecord, Subscriber
from publisher.output import Writer, write_atomic
from publisher.store import Store

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


@dataclass
class RunReport:
    collect: CollectReport | None = None
    files_written: list[str] = field(default_factory=list)
    files_unchanged: int = 0
    digest: str | None = None  # the key of the digest created in this run
    digest_articles: int = 0
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


PREVIEW_READER = Subscriber(0, "preview", "reader@example.com", "A Reader")


def run(config: Config, options: Options, steps: Collection[Step] = EVERYTHING) -> RunReport:
    if Step.SEND in steps and (options.dry_run or options.preview):
        raise ValueError("a dry run or a preview sends nothing: leave Step.SEND out")
    report = RunReport(dry_run=options.dry_run)
    now = datetime.now(UTC)
    wait = config.store.lock_wait if options.lock_wait is None else options.lock_wait
    lock = {"wait": wait, "ttl": config.store.lease, "what": options.what, "stop": options.stop}
    with (
        Store.scratch_copy(config) if options.dry_run else Store.of(config) as store,
        site_lock(store, dry_run=options.dry_run, **lock),
    ):
        if Step.COLLECT in steps:
            report.collect = collect(config, store, now, options.reading)
        if Step.DIGEST in steps:
            prepare_digest(config, store, now, options, report)
        if Step.BUILD in steps:
            try:
                write_outputs(config, store, now, options, report)
            except OutputError as exc:  # a full or read-only output folder must not stop the mail
                if Step.SEND not in steps:
                    raise
                report.output_error = str(exc)
                log.info("%s; delivering the digest anyway", exc)  # the run then fails with it
        if Step.SEND in steps:
            deliver(config, store, report, options.progress, options.stop)
    return report


def prepare_digest(config: Config, store: Store, now: datetime, options: Options, report: RunReport) -> None:
    """Select and render the next digest; record it and its queue unless previewing."""
    selection = digests.select(
        store.articles.not_yet_in_digest(now),
        config.digest.max_articles,
        store.articles.corrected_since_digest(now),
    )
    if selection.empty and config.digest.skip_if_empty:
        return
    day = now.astimezone(config.tz).strftime("%Y-%m-%d")
    key = store.ledger.next_key(day)
    # Rendered and built before anything is recorded: a digest whose messages cannot
    # be built fails the run here and leaves no digest stuck in "sending".
    try:
        selection, rendered = digests.compose(config, selection, key, now)
    except jinja2.TemplateError as exc:
        raise PublisherError(f"cannot render the digest: {_template_error(exc)}") from None
    draft = DigestRecord(0, key, now, rendered.subject, "draft", rendered.html, rendered.text)
    sample = Messages.for_site(config, store).digest(draft)(PREVIEW_READER)
    if options.preview:
        write_atomic(
            Path(options.preview), site.archived(rendered.html, Links(config.site.base_url)).encode()
        )
    if options.dry_run or options.preview:
        report.digest, report.digest_articles = key, len(selection.shown)
        links = Links(config.site.base_url)
        shown = selection.shown + selection.updated
        report.checks = check_message(sample, [a.title for a in shown], [links.article(a) for a in shown])
        return
    items = [DigestItem(a.id, a.content_hash, True) for a in selection.shown + selection.updated]
    items += [DigestItem(a.id, a.content_hash, False) for a in selection.hidden]
    record = store.ledger.create_digest(key, rendered.subject, rendered.html, rendered.text, items, now)
    report.digest, report.digest_articles = record.key, len(selection.shown)


def _template_error(exc: jinja2.TemplateError) -> str:
    """Where a template failed, for one line: ``digest.txt line 3: 'x' is undefined``."""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if not frame.filename.endswith(".py"):
            return f"{frame.filename} line {frame.lineno}: {exc.message}"
    return str(exc.message)


def write_outputs(config: Config, store: Store, now: datetime, options: Options, report: RunReport) -> None:
    published = store.articles.published(now)
    with Writer(config.output.dir, dry_run=options.dry_run, complete=True) as writer:  # commits at the end
        changed_feeds = [
            path for path, data in feeds.build(config, published).items() if writer.write(path, data)
        ]
        writer.write_all(site.build(config, published, store.ledger.all_digests()).items())
    report.files_written = writer.written
    report.files_unchanged = len(writer.unchanged)
    if config.feeds.websub_hub and changed_feeds and not options.dry_run:
        links = Links(config.site.base_url)
        websub.announce(config.feeds.websub_hub, [links.url(path) for path in changed_feeds])


def deliver(
    config: Config,
    store: Store,
    report: RunReport,
    progress: Callable[[int, int], None] | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Send every queued delivery of every unfinished digest, oldest digest first.

    Once ``stop`` is set, the messages in flight finish, the rest stay queued for the
    next run, and ``Stopped`` is raised."""
    pending = store.ledger.unfinished()
    if not pending:
        return
    factory, workers = transports(config.delivery)
    d = config.delivery
    policy = SendPolicy(workers, d.retries, d.retry_delay, d.bounce_limit, d.smtp.rate)
    messages = Messages.for_site(config, store)
    gate = deliverability.gate_for(config, store)  # one per run: a paused provider stays paused
    for record in pending:
        part = send_queued(
            store.ledger,
            record.id,
            lambda sub, issue=record.id: messages.envelope(issue, sub),
            messages.digest(record),
            factory,
            policy,
            progress,
            stop,
            gate,
        )
        report.delivery.add(part)
        if stop is not None and stop.is_set():
            raise Stopped()


@contextmanager
def site_lock(
    store: Store,
    *,
    dry_run: bool = False,
    wait: float = 10.0,
    ttl: float = 60.0,
    what: str = "publish",
    stop: threading.Event | None = None,
) -> Iterator[None]:
    """The one lock every writer of a site shares (a row in the store, renewed
    while held, taken over once expired if its holder died)."""
    if dry_run:
        yield
        return
    lock = Lock(store.meta, SITE_LOCK, what, ttl)
    lock.acquire(wait, stop)
    try:
        yield
    finally:
        lock.release()
