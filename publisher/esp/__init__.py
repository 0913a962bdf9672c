"""Email service providers' webhooks: each provider's module verifies a request by
the provider's documented scheme and reads its events into feedback Events.

- ``ses``: Amazon SES notifications through SNS (``sns`` verifies them);
- ``postmark``: basic auth credentials set on the webhook;
- ``mailgun``: HMAC-SHA256 of timestamp + token with the signing key;
- ``sendgrid``: the Signed Event Webhook (ECDSA P-256 over timestamp + body).

A request that fails verification raises ``Rejected`` with the HTTP status to
answer (401 without credentials, 403 for anything forged, tampered, stale or
replayed) and one line for the log; nothing is recorded.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from publisher.errors import Rejected
from publisher.feedback import Event, event_key

_STATUS = re.compile(r"(?<![\d.])([245]\.\d{1,3}\.\d{1,3})(?![\d.])")
PROVIDERS = ("ses", "postmark", "mailgun", "sendgrid")

# The delivery an envelope sender names (our VERP return path): (issue id, subscriber id).
Ids = Callable[[str], "tuple[int, int] | None"]


def event(
    provider: str,
    delivery: tuple[int, int] | None,
    kind: str,
    key: tuple[Any, ...],
    at: datetime,
    address: Any,
    status: str = "",
    diagnostic: str = "",
) -> Event | None:
    """A feedback event from ``provider``'s report (None when it names no one);
    ``key`` holds what identifies the report in the provider's own terms."""
    address = address if isinstance(address, str) else ""
    if not address and delivery is None:
        return None
    issue_id, subscriber_id = delivery or (None, None)
    return Event(
        kind=kind,
        key=event_key(f"webhook:{provider}", *key),
        source=f"webhook:{provider}",
        at=at,
        address=address.strip(),
        issue_id=issue_id,
        subscriber_id=subscriber_id,
        status=status.strip()[:16],
        diagnostic=" ".join(diagnostic.split())[:1000],
    )


def enhanced_code(text: str) -> str:
    """The first RFC 3463 status code in a provider's text ("smtp;550 5.1.1 ..."), or ""."""
    found = _STATUS.search(text)
    return found.group(1) if found else ""


def when(value: Any, now: datetime) -> datetime:
    """A report's time: an ISO 8601 text or Unix seconds; ``now`` when it has none."""
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, UTC)
        if isinstance(value, str) and value:
            found = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return found if found.tzinfo else found.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        pass
    return now


def fresh(timestamp: str, now: datetime, max_age: int, who: str) -> None:
    """A signed Unix timestamp within ``max_age`` seconds of now; else ``Rejected`` (stale)."""
    try:
        age = now.timestamp() - float(timestamp)
    except ValueError:
        raise Rejected(403, f"the {who} timestamp {timestamp!r} is not a number") from None
    if not abs(age) <= max_age:  # NaN too
        raise Rejected(403, f"the {who} timestamp is {age:.0f} s from now (more than webhooks.max_age)")
