"""Send one digest's queued deliveries and keep the ledger true as it goes.

The ledger row for every (digest, subscriber) exists before this runs; a row is
marked ``sent`` only after the transport accepted the message, so a run killed at
any point is resumed by the next one with at most the in-flight messages sent
twice. The subscriber's status is read again right before each send: an
unsubscribe committed meanwhile wins.

Several workers (threads, one transport each, every connection reused) send in
parallel; one writer (the calling thread) records their outcomes. It commits
whatever has arrived since its last commit in one transaction (group commit), so
the ledger pays one commit per handful of messages, never one fsync per message
(SQLite WAL with synchronous=NORMAL keeps every commit through a killed process).

Temporary failures (4xx, dropped connections) are retried with exponential
backoff and, if still failing, left queued for the next run. Permanent failures
(5xx) are recorded with the server's reply; "no such user" (5.1.1) marks the
address bounced at once, other hard failures after ``bounce_limit`` of them.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from publisher.delivery import Transport
from publisher.errors import DeliveryError
from publisher.models import Outcome, Subscriber

log = logging.getLogger(__name__)

_NO_SUCH_USER = re.compile(r"\b5\.1\.1\b|user unknown|no such user|mailbox unavailable", re.IGNORECASE)
_KEEP_ERRORS = 100  # in the report; the ledger keeps every one
_GIVE_UP_AFTER = 20  # consecutive temporary failures: the server is unwell, stop for this run


class LedgerView(Protocol):
    """What sending needs of the store (``publisher.store.ledger.Ledger`` has it)."""

    def queued(self, digest_id: int, batch: int = ...) -> Iterator[Subscriber]: ...
    def queued_count(self, digest_id: int) -> int: ...
    def status_checker(self) -> AbstractContextManager[Callable[[int], bool]]: ...
    def record(
        self, digest_id: int, outcomes: Sequence[Outcome], now: datetime, bounce_limit: int
    ) -> int: ...
    def finish(self, digest_id: int) -> None: ...


@dataclass
class SendReport:
    sent: int = 0
    failed: int = 0  # permanent failures
    deferred: int = 0  # temporary failures, still queued for the next run
    skipped: int = 0  # unsubscribed meanwhile
    bounced: int = 0  # addresses suppressed by this run
    errors: list[str] = field(default_factory=list)

    def add(self, other: SendReport) -> None:
        for name in ("sent", "failed", "deferred", "skipped", "bounced"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.errors += other.errors


@dataclass(frozen=True)
class SendPolicy:
    workers: int = 1
    retries: int = 3
    retry_delay: float = 2.0
    bounce_limit: int = 3
    rate: float = 0.0  # messages per second over all workers, 0 = unlimited


class RateLimit:
    """Spaces sends evenly over all workers: at most ``rate`` per second."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            time.sleep(slot - now)


def classify(exc: DeliveryError) -> str:
    """How a permanent failure counts against the address: "now" or "count"."""
    return "now" if _NO_SUCH_USER.search(str(exc)) else "count"


def send_queued(
    ledger: LedgerView,
    digest_id: int,
    sender: str,
    message_for: Callable[[Subscriber], bytes],
    open_transport: Callable[[], Transport],
    policy: SendPolicy = SendPolicy(),
    progress: Callable[[int, int], None] | None = None,
    halt: threading.Event | None = None,
) -> SendReport:
    """Send every queued delivery of one digest; return what happened.

    ``progress(done, total)`` is called from the calling thread after each commit.
    Setting ``halt`` (SIGTERM in the daemon) lets the messages in flight finish and
    leaves the rest queued for the next run.
    """
    report = SendReport()
    total = ledger.queued_count(digest_id)
    if total == 0:
        ledger.finish(digest_id)
        return report
    workers = max(1, min(policy.workers, total))
    jobs: queue.Queue[Subscriber | None] = queue.Queue(maxsize=workers * 2)
    results: queue.Queue[Outcome | BaseException] = queue.Queue()
    stop = _Either(threading.Event(), halt)
    limiter = RateLimit(policy.rate)

    def work() -> None:
        transport: Transport | None = None
        try:
            transport = open_transport()
            with ledger.status_checker() as active:
                while (sub := jobs.get()) is not None:
                    if stop.is_set():
                        continue  # drain: the rest stays queued
                    results.put(_deliver(active, sub, sender, message_for, transport, policy, limiter, stop))
        except BaseException as exc:  # a bug, not a delivery failure: stop everything
            stop.set()
            results.put(exc)
        finally:
            if transport is not None:
                transport.close()

    threads = [threading.Thread(target=work, name=f"send-{i}", daemon=True) for i in range(workers)]
    for t in threads:
        t.start()
    with ledger.recorder() as record:
        writer = _Writer(record, digest_id, policy.bounce_limit, report, results, stop, total, progress)
        pending = ledger.queued(digest_id)
        try:
            more = True
            while more and not stop.is_set():
                while not jobs.full():  # keep every worker busy ...
                    sub = next(pending, None)
                    if sub is None:
                        more = False
                        break
                    jobs.put(sub)
                writer.flush(wait=0.05)  # ... and commit each outcome as soon as it arrives
        except BaseException:
            stop.set()  # the workers drain their queue without sending
            raise
        finally:
            for _ in threads:
                while any(t.is_alive() for t in threads):
                    try:
                        jobs.put(None, timeout=0.05)
                        break
                    except queue.Full:
                        writer.flush(wait=0)
            while any(t.is_alive() for t in threads):
                writer.flush(wait=0.05)
            writer.flush(wait=0)
    if writer.crash is not None:
        raise writer.crash
    if report.deferred == 0 and not stop.is_set() and ledger.queued_count(digest_id) == 0:
        ledger.finish(digest_id)
    return report


class _Either:
    """Our own stop (a crash in a worker) or the caller's (a requested shutdown)."""

    def __init__(self, own: threading.Event, other: threading.Event | None) -> None:
        self.own, self.other = own, other

    def set(self) -> None:
        self.own.set()

    def is_set(self) -> bool:
        return self.own.is_set() or (self.other is not None and self.other.is_set())


def _deliver(
    active: Callable[[int], bool],
    sub: Subscriber,
    sender: str,
    message_for: Callable[[Subscriber], bytes],
    transport: Transport,
    policy: SendPolicy,
    limiter: RateLimit,
    stop: _Either,
) -> Outcome:
    if not active(sub.id):  # read now, not when the batch was: an unsubscribe meanwhile wins
        return Outcome(sub.id, "skipped", "no longer subscribed")
    message = message_for(sub)
    attempt = 0
    while True:
        limiter.wait()
        try:
            transport.send(sender, sub.email, message)
        except DeliveryError as exc:
            if exc.permanent:
                return Outcome(sub.id, "failed", str(exc), classify(exc))
            if attempt >= policy.retries or stop.is_set():
                return Outcome(sub.id, "queued", str(exc))
            time.sleep(policy.retry_delay * 2**attempt)
            attempt += 1
        else:
            return Outcome(sub.id, "sent")


class _Writer:
    """Records outcomes in the ledger (group commit) and keeps the report."""

    def __init__(
        self,
        record: Callable[[int, Sequence[Outcome], datetime, int], int],
        digest_id: int,
        bounce_limit: int,
        report: SendReport,
        results: queue.Queue[Outcome | BaseException],
        stop: _Either,
        total: int,
        progress: Callable[[int, int], None] | None,
    ) -> None:
        self.record, self.digest_id, self.bounce_limit = record, digest_id, bounce_limit
        self.report, self.results, self.stop = report, results, stop
        self.total, self.done, self.progress = total, 0, progress
        self.crash: BaseException | None = None
        self.deferred_in_a_row = 0

    def flush(self, wait: float) -> None:
        batch: list[Outcome] = []
        try:
            item = self.results.get(timeout=wait) if wait else self.results.get_nowait()
            while True:
                if isinstance(item, BaseException):
                    self.crash = self.crash or item
                else:
                    batch.append(item)
                item = self.results.get_nowait()
        except queue.Empty:
            pass
        if not batch:
            return
        self.report.bounced += self.record(self.digest_id, batch, datetime.now(UTC), self.bounce_limit)
        for o in batch:
            self._count(o)
        step = max(100, self.total // 10)
        if (self.done + len(batch)) // step > self.done // step or self.done + len(batch) == self.total:
            log.info("digest: %d of %d deliveries done", self.done + len(batch), self.total)
        self.done += len(batch)
        if self.progress is not None:
            self.progress(self.done, self.total)

    def _count(self, o: Outcome) -> None:
        r = self.report
        if o.status == "sent":
            r.sent += 1
            self.deferred_in_a_row = 0
        elif o.status == "skipped":
            r.skipped += 1
        elif o.status == "failed":
            r.failed += 1
            self.deferred_in_a_row = 0
        else:
            r.deferred += 1
            self.deferred_in_a_row += 1
            if self.deferred_in_a_row >= _GIVE_UP_AFTER and not self.stop.is_set():
                self.stop.set()
                msg = f"{_GIVE_UP_AFTER} temporary failures in a row: the rest stays queued for the next run"
                r.errors.append(msg)
                log.warning("%s", msg)
        if o.error and o.status != "skipped":
            if len(r.errors) < _KEEP_ERRORS:
                r.errors.append(o.error)
            log.warning("%s", o.error)
