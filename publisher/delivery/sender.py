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
backoff (the retry waits in a queue, not in a worker) and, if still failing, left
queued for the next run; many in a row stop the run early. Permanent failures of a
recipient (``publisher.delivery.replies`` reads the reply) are recorded with the
server's reply; an address that cannot exist (5.1.1) is marked bounced at once,
other recipient failures after ``bounce_limit`` of them. A refusal of the sender or
of the message itself (policy, content, a broken server) is nobody's bounce: the
run stops at once (``SendReport.halted`` says why) and the rest stays queued. A
policy refusal (4.7.x/5.7.x) is scoped to the recipient's mailbox provider instead
(``deliverability.gate``): past its threshold that provider is paused for the run, its
deliveries stay queued and ``SendReport.paused`` says why; the others still get theirs.
Each outcome keeps the server's reply codes for ``publish deliverability``.
"""

from __future__ import annotations

import heapq
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from publisher.deliverability.gate import ProviderGate
from publisher.delivery import Transport
from publisher.errors import DeliveryError
from publisher.models import Outcome, Subscriber

log = logging.getLogger(__name__)

_KEEP_ERRORS = 100  # in the report; the ledger keeps every one
_GIVE_UP_AFTER = 20  # consecutive temporary failures: the server is unwell, stop for this run


class LedgerView(Protocol):
    """What sending needs of the store (``publisher.store.ledger.Ledger`` has it, and
    ``PartLedger``: one rendition of an issue, its readers' subscriptions checked)."""

    def queued(self, digest_id: int, batch: int = ...) -> Iterator[Subscriber]: ...
    def queued_count(self, digest_id: int) -> int: ...
    def status_checker(self) -> AbstractContextManager[Callable[[int], bool]]: ...
    def recorder(self) -> AbstractContextManager[Callable[[int, Sequence[Outcome], datetime, int], int]]: ...
    def finish(self, digest_id: int) -> None: ...


@dataclass
class SendReport:
    sent: int = 0
    failed: int = 0  # permanent failures
    queued: int = 0  # temporary failures, still queued for the next run
    skipped: int = 0  # unsubscribed meanwhile
    bounced: int = 0  # addresses suppressed by this run
    errors: list[str] = field(default_factory=list)
    halted: str = ""  # why the server's refusal of the message itself stopped the run
    paused: list[str] = field(default_factory=list)  # mailbox providers this run stopped sending to, why
    left: int = 0  # deliveries still queued when the run ended (tried or not)

    def add(self, other: SendReport) -> None:
        self.sent += other.sent
        self.failed += other.failed
        self.queued += other.queued
        self.skipped += other.skipped
        self.bounced += other.bounced
        self.left += other.left
        self.errors += other.errors
        self.halted = self.halted or other.halted
        self.paused += [p for p in other.paused if p not in self.paused]


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


def send_queued(
    ledger: LedgerView,
    digest_id: int,
    sender: str | Callable[[Subscriber], str],
    message_for: Callable[[Subscriber], bytes],
    open_transport: Callable[[], Transport],
    policy: SendPolicy = SendPolicy(),
    progress: Callable[[int, int], None] | None = None,
    stop: threading.Event | None = None,
    gate: ProviderGate | None = None,
) -> SendReport:
    """Send every queued delivery of one digest; return what happened.

    ``sender`` is the envelope sender (MAIL FROM), or a function giving each
    subscriber's (a VERP return path names the delivery).

    ``progress(done, total)`` is called from the calling thread after each commit.
    Setting ``stop`` (SIGTERM in the daemon) lets the messages in flight finish and
    leaves the rest queued for the next run. ``gate`` pauses a mailbox provider that
    refuses the mail for policy (``deliverability.gate``): its deliveries stay queued.
    """
    report = SendReport()
    total = ledger.queued_count(digest_id)
    if total == 0:
        ledger.finish(digest_id)
        return report
    with ledger.recorder() as record:
        run = _Run(ledger, digest_id, record, policy, report, total, progress, stop, gate)
        run.send(sender, message_for, open_transport)
    report.left = ledger.queued_count(digest_id)
    if report.queued == 0 and not run.stop.is_set() and report.left == 0:
        ledger.finish(digest_id)
    return report


@dataclass(frozen=True)
class _Retry:
    """A temporary failure: try ``sub`` again after a backoff (its worker moves on)."""

    sub: Subscriber
    attempts: int  # tries made so far
    error: str
    code: int | None = None
    status: str = ""


@dataclass(frozen=True)
class _Halt:
    """The server refused the message itself: ``sub`` stays queued and the run stops."""

    sub: Subscriber
    error: str
    code: int | None = None
    status: str = ""


@dataclass(frozen=True)
class _Paused:
    """``sub``'s mailbox provider is paused (``line``: it just was, and why): it stays
    queued; ``error`` is the refusal that paused it, when one did."""

    sub: Subscriber
    line: str = ""
    error: str | None = None
    code: int | None = None
    status: str = ""


_Job = tuple[Subscriber, int]  # (subscriber, tries made so far)


class _Stop:
    """Stop sending: on our own request (a crash in a worker, too many temporary
    failures) or the caller's (a requested shutdown)."""

    def __init__(self, own: threading.Event, other: threading.Event | None) -> None:
        self.own, self.other = own, other

    def set(self) -> None:
        self.own.set()

    def is_set(self) -> bool:
        return self.own.is_set() or (self.other is not None and self.other.is_set())


def _deliver(
    active: Callable[[int], bool],
    job: _Job,
    sender: str | Callable[[Subscriber], str],
    message_for: Callable[[Subscriber], bytes],
    transport: Transport,
    limiter: RateLimit,
    gate: ProviderGate | None = None,
) -> Outcome | _Retry | _Halt | _Paused:
    sub, attempts = job
    if not active(sub.id):  # read now, not when the batch was: an unsubscribe meanwhile wins
        return Outcome(sub.id, "skipped", "no longer subscribed")
    if gate is not None and gate.paused(sub.email):
        return _Paused(sub)
    message = message_for(sub)
    limiter.wait()
    try:
        transport.send(sender if isinstance(sender, str) else sender(sub), sub.email, message)
    except DeliveryError as exc:
        error, code, status = str(exc), exc.code, exc.status
        if gate is not None:
            line = gate.observe(sub.email, error if exc.policy else "", at_once=exc.policy and exc.halt)
            if exc.policy and (exc.halt or line):  # its provider refuses our mail: only it is paused
                return _Paused(sub, line, error, code, status)
        if exc.halt:
            return _Halt(sub, error, code, status)
        if exc.permanent:
            return Outcome(sub.id, "failed", error, exc.bounce, code, status)
        return _Retry(sub, attempts + 1, error, code, status)
    if gate is not None:
        gate.observe(sub.email)
    return Outcome(sub.id, "sent")


class _Run:
    """One digest's sending: workers (threads, one transport each) take jobs; the
    calling thread feeds them, schedules retries with backoff (no worker waits for
    one) and records every outcome in the ledger as soon as it arrives."""

    def __init__(
        self,
        ledger: LedgerView,
        digest_id: int,
        record: Callable[[int, Sequence[Outcome], datetime, int], int],
        policy: SendPolicy,
        report: SendReport,
        total: int,
        progress: Callable[[int, int], None] | None,
        stop: threading.Event | None = None,
        gate: ProviderGate | None = None,
    ) -> None:
        self.ledger, self.digest_id, self.record, self.policy = ledger, digest_id, record, policy
        self.report, self.total, self.progress, self.gate = report, total, progress, gate
        self.workers = max(1, min(policy.workers, total))
        self.jobs: queue.Queue[_Job | None] = queue.Queue(maxsize=self.workers * 2)
        self.results: queue.Queue[Outcome | _Retry | _Halt | _Paused | BaseException] = queue.Queue()
        self.retries: list[tuple[float, int, _Job, _Retry]] = []  # heap of (due, seq, job, failure)
        self.stop = _Stop(threading.Event(), stop)
        self.crash: BaseException | None = None
        self.in_flight = self.done = self.temporary_in_a_row = self.seq = 0

    def send(
        self,
        sender: str | Callable[[Subscriber], str],
        message_for: Callable[[Subscriber], bytes],
        open_transport: Callable[[], Transport],
    ) -> None:
        limiter = RateLimit(self.policy.rate)

        def work() -> None:
            transport: Transport | None = None
            try:
                transport = open_transport()
                with self.ledger.status_checker() as active:
                    while (job := self.jobs.get()) is not None:
                        if self.stop.is_set():  # draining: it stays queued
                            self.results.put(Outcome(job[0].id, "queued", None))
                            continue
                        result = _deliver(active, job, sender, message_for, transport, limiter, self.gate)
                        if isinstance(result, _Halt):
                            self.stop.set()  # before this worker or another takes the next job
                        self.results.put(result)
            except BaseException as exc:  # a bug, not a delivery failure: stop everything
                self.stop.set()
                self.results.put(exc)
            finally:
                if transport is not None:
                    transport.close()

        threads = [threading.Thread(target=work, name=f"send-{i}", daemon=True) for i in range(self.workers)]
        for t in threads:
            t.start()
        pending: Iterator[Subscriber] | None = self.ledger.queued(self.digest_id)
        try:
            while not self.stop.is_set():
                while not self.jobs.full() and (job := self._next_job(pending)) is not None:
                    if job[0] is _END:
                        pending = None
                        break
                    self.jobs.put(job)
                    self.in_flight += 1
                if pending is None and not self.in_flight and not self.retries:
                    break
                self._flush(wait=self._wait())
        except BaseException:
            self.stop.set()  # the workers drain their queue without sending
            raise
        finally:
            for _ in threads:
                while any(t.is_alive() for t in threads):
                    try:
                        self.jobs.put(None, timeout=0.05)
                        break
                    except queue.Full:
                        self._flush(wait=0)
            while any(t.is_alive() for t in threads):
                self._flush(wait=0.05)
            self._flush(wait=0)
            self._give_up_retries()
        if self.crash is not None:
            raise self.crash

    def _next_job(self, pending: Iterator[Subscriber] | None) -> _Job | None:
        """A retry that is due, else the next queued subscriber (``_END`` when none is left).
        A retry whose provider was paused meanwhile stays queued with its last failure."""
        while self.retries and self.retries[0][0] <= time.monotonic():
            _, _, job, failed = heapq.heappop(self.retries)
            if self.gate is None or not self.gate.paused(job[0].email):
                return job
            self._commit([Outcome(job[0].id, "queued", failed.error, "", failed.code, failed.status)])
        if pending is None:
            return None
        return (next(pending, _END), 0)

    def _wait(self) -> float:
        if self.retries and not self.in_flight:
            return max(0.001, min(0.5, self.retries[0][0] - time.monotonic()))
        return 0.05

    def _flush(self, wait: float) -> None:
        """Take every result that arrived; commit the outcomes in one transaction."""
        batch: list[Outcome] = []
        try:
            item = self.results.get(timeout=wait) if wait else self.results.get_nowait()
            while True:
                if isinstance(item, BaseException):
                    self.crash = self.crash or item
                elif isinstance(item, _Halt):
                    self.in_flight -= 1
                    batch.append(Outcome(item.sub.id, "queued", item.error, "", item.code, item.status))
                    self._halt(item.error)
                elif isinstance(item, _Paused):
                    self.in_flight -= 1
                    if item.error is not None:  # tried and refused: recorded; else left as it was
                        batch.append(Outcome(item.sub.id, "queued", item.error, "", item.code, item.status))
                        self._temporary_failure()
                    if item.line and item.line not in self.report.paused:
                        self.report.paused.append(item.line)
                        log.warning("%s", item.line)
                elif isinstance(item, _Retry):
                    self.in_flight -= 1
                    self._temporary_failure()
                    if item.attempts > self.policy.retries or self.stop.is_set():
                        batch.append(Outcome(item.sub.id, "queued", item.error, "", item.code, item.status))
                    else:
                        due = time.monotonic() + self.policy.retry_delay * 2 ** (item.attempts - 1)
                        self.seq += 1
                        heapq.heappush(self.retries, (due, self.seq, (item.sub, item.attempts), item))
                else:
                    self.in_flight -= 1
                    batch.append(item)
                item = self.results.get_nowait()
        except queue.Empty:
            pass
        self._commit(batch)

    def _temporary_failure(self) -> None:
        """Every try that failed for a temporary reason counts; a delivered or refused
        message resets the count. Many in a row: the server is unwell (or down, each
        try waiting for a timeout), so stop for this run and leave the rest queued."""
        self.temporary_in_a_row += 1
        if self.temporary_in_a_row >= _GIVE_UP_AFTER and not self.stop.is_set():
            self.stop.set()
            msg = f"{_GIVE_UP_AFTER} temporary failures in a row: the rest stays queued for the next run"
            self.report.errors.append(msg)
            log.warning("%s", msg)

    def _halt(self, error: str) -> None:
        """The server refuses what every recipient would get: stop sending now."""
        if not self.report.halted:
            self.report.halted = error
            log.error("%s: sending stopped, the rest stays queued", error)
        self.stop.set()

    def _give_up_retries(self) -> None:
        """Retries still waiting when the run stops stay queued for the next run."""
        left = [Outcome(job[0].id, "queued", r.error, "", r.code, r.status) for _, _, job, r in self.retries]
        self.retries.clear()
        self._commit(left)

    def _commit(self, batch: list[Outcome]) -> None:
        if not batch:
            return
        self.report.bounced += self.record(self.digest_id, batch, datetime.now(UTC), self.policy.bounce_limit)
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
            self.temporary_in_a_row = 0
        elif o.status == "skipped":
            r.skipped += 1
        elif o.status == "failed":
            r.failed += 1
            self.temporary_in_a_row = 0
        else:
            r.queued += 1
        if o.error and o.status != "skipped":
            if len(r.errors) < _KEEP_ERRORS:
                r.errors.append(o.error)
            log.warning("%s", o.error)


_END = Subscriber(-1, "", "")  # no more queued subscribers
