"""The writer's side of a send (``delivery.sender``): every outcome recorded in the
ledger through the run's claim, and what the run tells about it.

A commit records a group of outcomes and renews the claim in one transaction
(``store.claims``), learns which claimed readers left the audience since (they are
skipped from then on), and says when the claim was lost (the run must stop). The
report's counts, the progress callback, the "N of M deliveries done" lines, the
run's temporary failures in a row (``delivery.unwell``) and a halt are kept here, one
error line told once however often it happens.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from publisher.delivery.unwell import GIVE_UP_AFTER, Streak
from publisher.models import Outcome
from publisher.store.claims import Claim

log = logging.getLogger("publisher.delivery.sender")  # the run's lines, as they always were

_KEEP_ERRORS = 100  # in the report; the ledger keeps every one


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
    left: int = 0  # deliveries still queued when the run ended (tried or not), for the next run
    elsewhere: int = 0  # deliveries still queued that other runs' claims hold: they are sending them
    lost: str = ""  # why this run stopped early: its claim was taken over by another run

    def add(self, other: SendReport) -> None:
        self.sent += other.sent
        self.failed += other.failed
        self.queued += other.queued
        self.skipped += other.skipped
        self.bounced += other.bounced
        self.left += other.left
        self.elsewhere += other.elsewhere
        self.errors += other.errors
        self.halted = self.halted or other.halted
        self.lost = self.lost or other.lost
        self.paused += [p for p in other.paused if p not in self.paused]


class Stopper(Protocol):
    def set(self) -> None: ...


class Recorder:
    """Records one run's outcomes under its claim; keeps its report."""

    def __init__(
        self,
        claim: Claim,
        report: SendReport,
        total: int,
        bounce_limit: int,
        progress: Callable[[int, int], None] | None,
        streak: Streak,
        stop: Stopper,
        lost: Callable[[], None],
    ) -> None:
        self.claim, self.report, self.total, self.bounce_limit = claim, report, total, bounce_limit
        self.progress, self.streak, self.stop, self.on_lost = progress, streak, stop, lost
        self.told: set[str] = set()  # errors logged: the same line (a refused connection) once
        self.left: set[int] = set()  # claimed readers who left the audience since (commits say)
        self.renewed = time.monotonic()
        self.renew_now = threading.Event()  # a worker waits for a renewal (past the deadline)
        self.done = 0
        self.parked = 0  # claimed rows left queued (a paused provider, a failure given up on)

    def commit(self, batch: list[Outcome], upcoming: int, renew: bool = False) -> None:
        """Record ``batch`` and renew the claim in one transaction (``renew``: even with
        nothing to record); learn who left the audience meanwhile. ``upcoming``: how
        many claimed readers may be handed to a transport before the next commit is done
        (besides those left queued)."""
        if not batch and not renew:
            return
        self.renew_now.clear()
        for o in batch:
            self.parked += o.status == "queued"
        # Re-checked: the claimed readers still queued that may be handed to a transport
        # before the next commit is done: the first in subscriber order (the order they
        # are handed out) past the rows left queued.
        ahead = upcoming + self.parked
        committed = self.claim.commit(batch, datetime.now(UTC), self.bounce_limit, ahead)
        self.renewed = time.monotonic()
        if not committed.held:
            self.on_lost()
        self.left.update(committed.left)
        self.report.bounced += committed.bounced
        for o in batch:
            self._count(o)
        if batch:
            self.finished(len(batch))

    def finished(self, n: int) -> None:
        """``n`` more deliveries done (recorded): the progress, a line every tenth."""
        step = max(100, self.total // 10)
        if (self.done + n) // step > self.done // step or self.done + n == self.total:
            log.info("digest: %d of %d deliveries done", self.done + n, self.total)
        self.done += n
        if self.progress is not None:
            self.progress(self.done, self.total)

    def temporary_failure(self) -> None:
        """Every try that failed for a temporary reason counts (``delivery.unwell``); the
        one that makes too many in a row stops the run (every sender of it)."""
        if self.streak.failed():
            self.stop.set()
            msg = f"{GIVE_UP_AFTER} temporary failures in a row: the rest stays queued for the next run"
            self.report.errors.append(msg)
            log.warning("%s", msg)

    def halt(self, error: str) -> None:
        """The server refuses what every recipient would get: stop sending now."""
        if not self.report.halted:
            self.report.halted = error
            log.error("%s: sending stopped, the rest stays queued", error)
        self.stop.set()

    def _count(self, o: Outcome) -> None:
        r = self.report
        if o.status == "sent":
            r.sent += 1
            self.streak.fine()
        elif o.status == "skipped":
            r.skipped += 1
        elif o.status == "failed":
            r.failed += 1
            self.streak.fine()
        else:
            r.queued += 1
        if o.error and o.status != "skipped":
            if len(r.errors) < _KEEP_ERRORS:
                r.errors.append(o.error)
            if o.error in self.told:
                log.debug("%s", o.error)
            else:
                log.warning("%s", o.error)
                if len(self.told) < _KEEP_ERRORS:
                    self.told.add(o.error)
