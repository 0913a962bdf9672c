"""One home for what comes back after sending: bounces, complaints and other reports.

Every intake (``publish bounces`` reading DSNs and ARF reports, the ESP webhooks of
``publish serve``) turns what it read into ``Event`` values and hands them to
``record``, which applies the rules in one transaction and commits before it returns
(so an intake may answer "done" only after ``record`` did):

- a complaint suppresses the address at once and ends every subscription it has;
- a hard bounce (RFC 3463 5.1.x, 5.2.1: the address cannot get mail) does the same;
- soft bounces (mailbox full, 4.x.x) are counted: ``bounces.soft_limit`` of them within
  ``bounces.soft_window_days`` suspend the address for ``bounces.soft_suspend_days``;
- a policy refusal (5.7.x: our message or sender was refused) never counts against
  the recipient; it is kept for the deliverability report;
- "delayed" and "delivered" reports are kept and change nothing.

The same event recorded twice (its ``key``) counts once. How a status code reads is
decided in ``publisher.delivery.replies`` (``feedback_kind``), the one home of that.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from publisher.config import BouncesConfig
from publisher.delivery.replies import feedback_kind

KINDS = ("hard_bounce", "soft_bounce", "complaint", "policy", "delayed", "delivered")
SUPPRESSES = ("complaint", "hard_bounce")  # at once, and every subscription ends
COUNTS = ("soft_bounce",)  # towards a suspension

if TYPE_CHECKING:
    from publisher.store import Store


def event_key(*parts: object) -> str:
    """A stable key from the parts that identify one report (e.g. the report's
    Message-ID and the recipient): SHA-256, hex."""
    joined = "\x00".join(str(p) for p in parts)
    return hashlib.sha256(joined.encode("utf-8", "surrogateescape")).hexdigest()


@dataclass(frozen=True)
class Event:
    """One report about one delivery or recipient.

    ``key`` identifies the report (``event_key``): the same report read twice has the
    same key and counts once. The delivery it names, if known: ``issue_id`` and
    ``subscriber_id`` (from the VERP return path, or an ESP's metadata); else only
    ``address``. ``status`` is RFC 3463's ``5.1.1`` where the report gave one,
    ``diagnostic`` the remote server's words. ``source`` says what brought it:
    ``dsn``, ``arf``, ``bounce`` (a non-standard bounce), ``verp`` (only the return
    path was readable) or ``webhook:<esp>``."""

    kind: str
    key: str
    source: str
    at: datetime
    address: str = ""
    issue_id: int | None = None
    subscriber_id: int | None = None
    status: str = ""
    diagnostic: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown feedback kind {self.kind!r} (known: {', '.join(KINDS)})")
        if not self.key:
            raise ValueError("a feedback event needs a key")
        if not self.address and self.subscriber_id is None:
            raise ValueError("a feedback event names an address or a subscriber")
        if self.at.tzinfo is None:
            raise ValueError("a feedback event's time must be aware")


def bounce_kind(status: str = "", diagnostic: str = "", *, action: str = "failed") -> str:
    """The kind of a bounce report: an RFC 3464 ``Action`` of ``delayed`` is only a
    warning (the mail is still being tried), ``delivered``/``relayed``/``expanded``
    is a success; a failure reads as ``replies.feedback_kind`` says."""
    action = action.strip().lower()
    if action == "delayed":
        return "delayed"
    if action in ("delivered", "relayed", "expanded"):
        return "delivered"
    return feedback_kind(status, diagnostic)


@dataclass
class Recorded:
    """What ``record`` did: events new and already known, and the addresses it
    suppressed (a complaint or a hard bounce) or suspended (soft bounces)."""

    new: int = 0
    duplicates: int = 0
    suppressed: list[str] = field(default_factory=list)
    suspended: list[str] = field(default_factory=list)
    unknown: int = 0  # events naming a subscriber the store does not have

    def add(self, other: Recorded) -> None:
        self.new += other.new
        self.duplicates += other.duplicates
        self.suppressed += other.suppressed
        self.suspended += other.suspended
        self.unknown += other.unknown


def record(
    store: Store, events: Iterable[Event], rules: BouncesConfig | None = None, now: datetime | None = None
) -> Recorded:
    """Apply ``events`` to the store in one transaction, committed before this
    returns; the same event (key) twice counts once. ``rules``: the site's
    ``[bounces]`` settings (soft bounce limit, window, suspension)."""
    return store.feedback.record(list(events), rules or BouncesConfig(), now or datetime.now(UTC))
