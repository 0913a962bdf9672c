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

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from publisher.config import BouncesConfig
from publisher.delivery.replies import feedback_kind
from publisher.models import COUNTS, KINDS, SUPPRESSES, Event, Recorded, event_key

if TYPE_CHECKING:
    from publisher.store import Store


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


def record(
    store: Store, events: Iterable[Event], rules: BouncesConfig | None = None, now: datetime | None = None
) -> Recorded:
    """Apply ``events`` to the store in one transaction, committed before this
    returns; the same event (key) twice counts once. ``rules``: the site's
    ``[bounces]`` settings (soft bounce limit, window, suspension)."""
    return store.feedback.record(list(events), rules or BouncesConfig(), now or datetime.now(UTC))


__all__ = ["COUNTS", "KINDS", "SUPPRESSES", "Event", "Recorded", "bounce_kind", "event_key", "record"]
