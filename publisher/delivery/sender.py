"""Send one digest's queued deliveries and keep the ledger true as it goes.

The ledger row for every (digest, subscriber) exists before this runs; a row is
marked ``sent`` only after the transport accepted the message, so a run killed at
any point is resumed by the next one with at most the in-flight messages sent
twice. A run claims the queued rows in batches (``publisher.store.claims``), so any
number of runs, in processes on any machines, share one issue: each row is sent by
the run holding its claim. The readers' audience is read with each batch and read
again at every commit: a reader who left meanwhile is skipped from then on. A run
whose claim was lost (it was paused past its claim's expiry and another run took the
rows) sends nothing more and says so (``SendReport.lost``).

Several workers (threads, one transport each, every connection reused) send in
parallel; one writer (the calling thread) records their outcomes. It commits
whatever has arrived since its last commit in one transaction (group commit), so
the ledger pays one commit per handful of messages, never one fsync per message
(SQLite WAL with synchronous=NORMAL keeps every commit through a killed process).
A connection sends its next message while its last outcomes are being committed, and
announces the one after with each message's content (``delivery.smtp``: one round trip
a message): it never has more than ``IN_FLIGHT`` (four) announced or sent and not yet
recorded, so a process killed or frozen at any moment leaves at most that many per
connection to arrive twice.
That writer's side, the ledger and the report, is ``delivery.recorder``.

Temporary failures (4xx, dropped connections) are retried with exponential
backoff (the retry waits in a queue, not in a worker) and, if still failing, left
queued for the next run; many in a row (``delivery.unwell``: counted over every
sender process of the run) stop the run early. Permanent failures of a
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
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from publisher.deliverability.gate import ProviderGate
from publisher.delivery import Transport
from publisher.delivery.attempt import Halt, Job, Paused, Retry, attempt, envelope_sender
from publisher.delivery.recorder import Recorder, SendReport
from publisher.delivery.unwell import Streak
from publisher.models import Outcome, Subscriber
from publisher.store.claims import SKIPPED, Claim

log = logging.getLogger(__name__)

_GROUP_WAIT = 0.005  # seconds a commit waits for the outcomes the other busy connections owe
_GROUP = 2  # outcomes a commit waits for from each busy connection (fewer: more commits)
# Messages a connection may have announced or sent and not yet recorded. Four: the one
# being sent, the next one announced with it, and the two before, whose commit (one of
# _GROUP outcomes a connection) overlaps them. With two, every message waited for the
# commit of the one before (one round trip a message could not be kept up); with one,
# every message waited for its own. A killed process may leave that many per connection
# sent twice.
IN_FLIGHT = 4
_JOBS = 4  # jobs handed out ahead, per worker: one is there to announce when a message goes


class LedgerView(Protocol):
    """What sending needs of the store (``publisher.store.ledger.Ledger`` has it, and
    ``PartLedger``: one rendition of an issue)."""

    def queued_count(self, digest_id: int) -> int: ...
    def queue_state(self, digest_id: int) -> tuple[int, int]: ...
    def claim(self, digest_id: int, ttl: float) -> Claim: ...
    def finish(self, digest_id: int) -> None: ...


@dataclass(frozen=True)
class SendPolicy:
    workers: int = 1
    retries: int = 3
    retry_delay: float = 2.0
    bounce_limit: int = 3
    rate: float = 0.0  # messages per second over all workers, 0 = unlimited
    claim_ttl: float = 60.0  # seconds a claim lasts unrenewed (store.lease)
    claim_size: int = 100  # deliveries claimed at a time: the least (up to 5x while much is left)


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
    streak: Streak | None = None,
) -> SendReport:
    """Send every queued delivery of one digest; return what happened.

    ``sender`` is the envelope sender (MAIL FROM), or a function giving each
    subscriber's (a VERP return path names the delivery).

    ``progress(done, total)`` is called from the calling thread after each commit.
    Setting ``stop`` (SIGTERM in the daemon) lets the messages in flight finish and
    leaves the rest queued for the next run. ``gate`` pauses a mailbox provider that
    refuses the mail for policy (``deliverability.gate``): its deliveries stay queued.
    ``streak`` counts temporary failures in a row over the whole run (every part, every
    sender process: ``delivery.unwell``); by default this call's own.
    Other runs may send the same digest at the same time: each sends what it claimed.
    """
    report = SendReport()
    total = ledger.queued_count(digest_id)
    if total == 0:
        ledger.finish(digest_id)
        return report
    with ledger.claim(digest_id, policy.claim_ttl) as claim:
        run = _Run(claim, policy, report, total, progress, stop, gate, streak or Streak())
        run.send(sender, message_for, open_transport)
    queued, report.elsewhere = ledger.queue_state(digest_id)  # one snapshot (store.ledger)
    report.left = queued - report.elsewhere
    if report.queued == 0 and not run.stop.is_set() and queued == 0:
        ledger.finish(digest_id)
    return report


class _Stop:
    """Stop sending: on our own request (a crash in a worker, a halt), the caller's (a
    requested shutdown) or the run's (too many temporary failures in a row, counted by
    every sender of the run)."""

    def __init__(self, own: threading.Event, other: threading.Event | None, streak: Streak) -> None:
        self.own, self.other, self.streak = own, other, streak

    def set(self) -> None:
        self.own.set()

    def is_set(self) -> bool:
        return self.own.is_set() or (self.other is not None and self.other.is_set()) or self.streak.reached()


class _Turn:
    """A worker's turns to hand its transport a message: one is taken before each message
    and given back by the writer once that message's outcome is committed, ``IN_FLIGHT``
    of them: a connection never has more messages sent and not recorded. Tokens in a
    SimpleQueue (in C: a Queue or a Semaphore is Python code, each a cost of the GIL)."""

    def __init__(self) -> None:
        self._tokens: queue.SimpleQueue[None] = queue.SimpleQueue()
        for _ in range(IN_FLIGHT):
            self._tokens.put(None)

    def take_now(self) -> bool:
        """A turn if one is free now (False: none, and nothing waited for)."""
        try:
            self._tokens.get_nowait()
            return True
        except queue.Empty:
            return False

    def take(self, stop: _Stop) -> bool:
        """Wait for a turn; False: the run stops first (nothing more is sent)."""
        while True:
            try:
                self._tokens.get(timeout=0.05)
                return True
            except queue.Empty:
                if stop.is_set():
                    return False

    def give(self) -> None:
        if self._tokens.qsize() < IN_FLIGHT:  # not one a worker that stopped waiting never took
            self._tokens.put(None)


class _Run:
    """One digest's sending: workers (threads, one transport each) take jobs; the
    calling thread claims batches of the queue, feeds them, schedules retries with
    backoff (no worker waits for one) and records every outcome in the ledger as soon
    as it arrives, renewing the claim with each commit (and on its own when no outcome
    arrives for a while)."""

    def __init__(
        self,
        claim: Claim,
        policy: SendPolicy,
        report: SendReport,
        total: int,
        progress: Callable[[int, int], None] | None,
        stop: threading.Event | None = None,
        gate: ProviderGate | None = None,
        streak: Streak | None = None,
    ) -> None:
        self.claim, self.policy, self.streak = claim, policy, streak or Streak()
        self.report, self.total, self.gate = report, total, gate
        self.pending: deque[Subscriber] = deque()  # claimed, not yet handed to a worker
        self.claimed_all = False  # nothing more to claim (or the claim is lost)
        self.claim_again = 0.0  # time.monotonic() before which claiming is not tried again
        self.workers = max(1, min(policy.workers, total))
        # SimpleQueue and plain locks (in C) between the threads: a Queue or an Event
        # (conditions in Python) per message cost more of the GIL than the sending
        self.jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()  # at most _JOBS a worker
        # (worker, what it did): each worker's last outcome is committed before it hands
        # the transport more than IN_FLIGHT messages (its _Turn), so a process killed at
        # any moment leaves at most that many per connection sent and not recorded
        self.results: queue.SimpleQueue[tuple[int, Outcome | Retry | Halt | Paused | BaseException]] = (
            queue.SimpleQueue()
        )
        self.turns = [_Turn() for _ in range(self.workers)]
        self.retries: list[tuple[float, int, Job, Retry]] = []  # heap of (due, seq, job, failure)
        self.stop = _Stop(threading.Event(), stop, self.streak)
        self.crash: BaseException | None = None
        self.in_flight = self.seq = 0
        self.rec = Recorder(
            claim, report, total, policy.bounce_limit, progress, self.streak, self.stop, self._lose
        )

    def send(
        self,
        sender: str | Callable[[Subscriber], str],
        message_for: Callable[[Subscriber], bytes],
        open_transport: Callable[[], Transport],
    ) -> None:
        limiter = RateLimit(self.policy.rate)

        def work(me: int) -> None:
            transport: Transport | None = None
            turn = self.turns[me]
            taken = False  # this job's turn, taken by may_send before the transport has it
            ahead: list[Job | None] = []  # the next job, taken early to be announced
            announced = False  # this job was announced with the last message: turn taken, checked
            next_announced = False

            def may_send(sub: Subscriber) -> Outcome | None:
                nonlocal taken
                if announced:
                    return None
                taken = turn.take(self.stop)
                return self._may_send(sub) if taken else Outcome(sub.id, "queued", None)

            def following() -> tuple[str, str] | None:
                """The next job's envelope, for the transport to announce with this
                message's content, when that job may be sent at once: a turn free now,
                its reader still in the audience, the claim current, its provider not
                paused, no rate limit to wait for. None: it goes the usual way."""
                nonlocal next_announced
                if ahead or limiter.interval or self.stop.is_set():
                    return None
                try:
                    job = self.jobs.get_nowait()
                except queue.Empty:
                    return None
                ahead.append(job)
                if job is None or (self.gate is not None and self.gate.paused(job[0].email)):
                    return None
                if not self._may_announce(job[0]) or not turn.take_now():
                    return None
                next_announced = True
                return envelope_sender(sender, job[0]), job[0].email

            try:
                transport = open_transport()
                while (job := ahead.pop() if ahead else self.jobs.get()) is not None:
                    announced, next_announced = next_announced, False
                    taken = announced
                    if self.stop.is_set():  # draining: it stays queued
                        result: Outcome | Retry | Halt | Paused = Outcome(job[0].id, "queued", None)
                    else:
                        result = attempt(
                            job, sender, message_for, transport, limiter.wait, may_send, self.gate, following
                        )
                    if isinstance(result, Halt):
                        self.stop.set()  # before this worker or another takes the next job
                    if not taken:  # one turn for each result: the writer gives one back for each
                        turn.take(self.stop)
                    self.results.put((me, result))
            except BaseException as exc:  # a bug, not a delivery failure: stop everything
                self.stop.set()
                self.results.put((me, exc))
            finally:
                if transport is not None:
                    transport.close()

        threads = [
            threading.Thread(target=work, args=(i,), name=f"send-{i}", daemon=True)
            for i in range(self.workers)
        ]
        for t in threads:
            t.start()
        try:
            while not self.stop.is_set():
                while self.jobs.qsize() < _JOBS * self.workers and (job := self._next_job()) is not None:
                    self.jobs.put(job)
                    self.in_flight += 1
                if self.claimed_all and not self.pending and not self.in_flight and not self.retries:
                    break
                self._flush(wait=self._wait())
                if (
                    self.rec.renew_now.is_set()
                    or time.monotonic() - self.rec.renewed > self.policy.claim_ttl / 4
                ):
                    self._commit([], renew=True)
        except BaseException:
            self.stop.set()  # the workers drain their queue without sending
            raise
        finally:
            for _ in threads:
                self.jobs.put(None)
            while any(t.is_alive() for t in threads):
                self._flush(wait=0.05)
            self._flush(wait=0)
            self._give_up_retries()
        if self.crash is not None:
            raise self.crash

    def _next_job(self) -> Job | None:
        """A retry that is due, else the next claimed subscriber (claiming another batch
        when the last one is handed out); None: nothing to hand out now. A retry whose
        provider was paused meanwhile stays queued with its last failure."""
        while self.retries and self.retries[0][0] <= time.monotonic():
            _, _, job, failed = heapq.heappop(self.retries)
            if self.gate is None or not self.gate.paused(job[0].email):
                return job
            self._commit([Outcome(job[0].id, "queued", failed.error, "", failed.code, failed.status)])
        while not self.pending and not self.claimed_all and time.monotonic() >= self.claim_again:
            batch = self.claim.take(self._claim_size())
            self.rec.renewed = time.monotonic()
            if self.claim.lost:
                self._lose()
            elif batch.skipped:  # left before the claim: recorded skipped by it
                self.report.skipped += batch.skipped
                self.rec.finished(batch.skipped)
            self.pending.extend(batch.readers)
            if batch.waiting:  # another sender's expired claim is not free yet: ask again soon
                self.claim_again = time.monotonic() + 0.2
            elif not (batch.readers or batch.skipped):
                self.claimed_all = True
        return (self.pending.popleft(), 0) if self.pending else None

    def _claim_size(self) -> int:
        """How many deliveries to claim next: ``claim_size`` while little is left, so the
        last of the queue is shared by every sender instead of waited for in one; up to
        five times that while much is (a claim is a transaction: fewer, larger ones cost
        less per message). ``total`` is this run's view, other senders' sends unseen."""
        least = self.policy.claim_size
        left = self.total - self.rec.done - len(self.pending) - self.in_flight
        return max(least, min(5 * least, left // 20))

    def _may_send(self, sub: Subscriber) -> Outcome | None:
        """None: a worker that has its turn (no more than ``IN_FLIGHT`` of its outcomes are
        unrecorded; the message was built meanwhile) may hand ``sub``'s message to its transport now: not to a
        reader who left since the claim (a commit saw it: skipped), and not past the
        claim's local deadline: a process paused past it waits for the calling thread's
        renewal, which fails once another run took the claim over (it stays queued)."""
        if sub.id in self.rec.left:
            return Outcome(sub.id, "skipped", SKIPPED)
        while time.monotonic() >= self.claim.deadline and not self.claim.lost:
            if self.stop.is_set():
                break
            self.rec.renew_now.set()
            time.sleep(0.01)
        if self.claim.lost or time.monotonic() >= self.claim.deadline:
            return Outcome(sub.id, "queued", None)
        return None

    def _may_announce(self, sub: Subscriber) -> bool:
        """Whether ``sub``'s message may be announced now, without waiting: what
        ``_may_send`` asks, where it would wait or give an outcome instead: no."""
        return sub.id not in self.rec.left and not self.claim.lost and time.monotonic() < self.claim.deadline

    def _lose(self) -> None:
        """The claim was taken over (this run was paused or cut off past its expiry):
        send nothing more; another run has the rows."""
        self.claimed_all = True
        self.pending.clear()
        if not self.report.lost:
            self.report.lost = (
                "another sender took over this run's claim on the deliveries (it expired while "
                "this run was paused or cut off): stopped sending"
            )
            log.warning("%s", self.report.lost)
        self.stop.set()

    def _wait(self) -> float:
        if self.retries and not self.in_flight:
            return max(0.001, min(0.5, self.retries[0][0] - time.monotonic()))
        return 0.05

    def _flush(self, wait: float) -> None:
        """Take every result that arrived (waiting up to ``wait`` for the first); commit
        the outcomes in one transaction. Group commit: once one has arrived, the others
        the busy connections owe are waited for a moment (``_GROUP_WAIT``), so a commit
        records every connection's outcome, not one each (a commit costs more than a
        message, on PostgreSQL several times more)."""
        batch: list[Outcome] = []
        done: list[_Turn] = []
        owed = min(_GROUP * self.workers, self.in_flight) if wait else 0
        try:
            worker, item = self.results.get(timeout=wait) if wait else self.results.get_nowait()
            until = time.monotonic() + _GROUP_WAIT
            while True:
                done.append(self.turns[worker])
                if isinstance(item, BaseException):
                    self.crash = self.crash or item
                elif isinstance(item, Halt):
                    self.in_flight -= 1
                    batch.append(Outcome(item.sub.id, "queued", item.error, "", item.code, item.status))
                    self.rec.halt(item.error)
                elif isinstance(item, Paused):
                    self.in_flight -= 1
                    self.rec.parked += item.error is None  # left queued as it was (else recorded queued)
                    if item.error is not None:  # tried and refused: recorded; else left as it was
                        batch.append(Outcome(item.sub.id, "queued", item.error, "", item.code, item.status))
                        self.rec.temporary_failure()
                    if item.line and item.line not in self.report.paused:
                        self.report.paused.append(item.line)
                        log.warning("%s", item.line)
                elif isinstance(item, Retry):
                    self.in_flight -= 1
                    self.rec.temporary_failure()
                    if item.attempts > self.policy.retries or self.stop.is_set():
                        batch.append(Outcome(item.sub.id, "queued", item.error, "", item.code, item.status))
                    else:
                        due = time.monotonic() + self.policy.retry_delay * 2 ** (item.attempts - 1)
                        self.seq += 1
                        heapq.heappush(self.retries, (due, self.seq, (item.sub, item.attempts), item))
                else:
                    self.in_flight -= 1
                    batch.append(item)
                left = until - time.monotonic()
                if len(done) < owed and left > 0 and not self.stop.is_set():
                    worker, item = self.results.get(timeout=left)
                else:
                    worker, item = self.results.get_nowait()
        except queue.Empty:
            pass
        self._commit(batch)
        for turn in done:
            turn.give()

    def _give_up_retries(self) -> None:
        """Retries still waiting when the run stops stay queued for the next run."""
        left = [Outcome(job[0].id, "queued", r.error, "", r.code, r.status) for _, _, job, r in self.retries]
        self.retries.clear()
        self._commit(left)

    def _commit(self, batch: list[Outcome], renew: bool = False) -> None:
        """Record ``batch`` (``renew``: renew the claim even with nothing to record). Each
        connection hands at most ``IN_FLIGHT`` messages per commit (no more may be
        unrecorded): the messages in flight, the retries waiting and that many more per
        connection, and one more, cover every reader handed out before the next commit."""
        ahead = self.in_flight + len(self.retries) + (IN_FLIGHT + 1) * self.workers
        self.rec.commit(batch, ahead, renew)
