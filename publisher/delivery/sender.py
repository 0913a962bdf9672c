"""Send one digest's queued deliveries and keep the ledger true as it goes.

The ledger row for every (digest, subscriber) exists before this runs; a row is
marked ``sent`` only after the transport accepted the message, so a run killed
at any point is resumed by the next one with at most the in-flight message sent
twice. The subscriber's status is read again right before each send: an
unsubscribe committed meanwhile wins.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from publisher.delivery import Transport
from publisher.errors import DeliveryError
from publisher.models import Subscriber

log = logging.getLogger(__name__)


class LedgerView(Protocol):
    """What sending needs of the store (``publisher.store.ledger.Ledger`` has it)."""

    def queued(self, digest_id: int, batch: int = ...) -> Iterator[Subscriber]: ...
    def still_active(self, subscriber_id: int) -> bool: ...
    def mark(
        self, digest_id: int, subscriber_id: int, status: str, now: datetime, error: str | None = None
    ) -> None: ...
    def finish(self, digest_id: int) -> None: ...


@dataclass
class SendReport:
    sent: int = 0
    failed: int = 0  # permanent failures
    deferred: int = 0  # temporary failures, still queued for the next run
    skipped: int = 0  # unsubscribed meanwhile
    errors: list[str] = field(default_factory=list)


def send_queued(
    ledger: LedgerView,
    digest_id: int,
    sender: str,
    message_for: Callable[[Subscriber], bytes],
    transport: Transport,
    progress: Callable[[], None] | None = None,
) -> SendReport:
    report = SendReport()
    for sub in ledger.queued(digest_id):
        if not ledger.still_active(sub.id):
            ledger.mark(digest_id, sub.id, "skipped", datetime.now(UTC), "no longer subscribed")
            report.skipped += 1
            continue
        try:
            transport.send(sender, sub.email, message_for(sub))
        except DeliveryError as exc:
            if exc.permanent:
                ledger.mark(digest_id, sub.id, "failed", datetime.now(UTC), str(exc))
                report.failed += 1
            else:
                report.deferred += 1
            report.errors.append(str(exc))
            log.warning("%s", exc)
        else:
            ledger.mark(digest_id, sub.id, "sent", datetime.now(UTC))
            report.sent += 1
        if progress is not None:
            progress()
    if report.deferred == 0:
        ledger.finish(digest_id)
    return report
