"""Mailgun webhooks: ``{"signature": {"timestamp", "token", "signature"}, "event-data": {...}}``.

Verified per Mailgun's documentation: the signature is the hex HMAC-SHA256 of
``timestamp + token`` keyed with the account's webhook signing key (compared in
constant time); a timestamp further than ``webhooks.max_age`` seconds from now is
stale, and a token seen before is a replay (the caller keeps the tokens seen).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime
from typing import Any

from publisher.errors import Rejected
from publisher.esp import Ids, enhanced_code, event, fresh, when
from publisher.feedback import Event, bounce_kind


def verify(body: bytes, key: str, now: datetime, max_age: int) -> tuple[dict[str, Any], str]:
    """(the event data, the token to remember) of a genuine, fresh request; else ``Rejected``."""
    try:
        payload = json.loads(body)
        signed = payload["signature"]
        timestamp, token, signature = str(signed["timestamp"]), str(signed["token"]), str(signed["signature"])
    except (ValueError, UnicodeDecodeError, KeyError, TypeError):
        raise Rejected(403, "no Mailgun signature in the request") from None
    expected = hmac.new(key.encode("utf-8"), (timestamp + token).encode("utf-8"), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature.lower()):
        raise Rejected(403, "the Mailgun signature does not match")
    fresh(timestamp, now, max_age, "Mailgun")
    data = payload.get("event-data")
    if not isinstance(data, dict):
        raise Rejected(400, "a Mailgun request without event-data")
    return data, token


def events(data: dict[str, Any], ids: Ids, now: datetime) -> list[Event]:
    """``failed`` (permanent: a bounce read from its reply; temporary: delayed),
    ``complained`` and ``delivered`` events; others (opens, clicks) give none."""
    name = data.get("event")
    envelope = data.get("envelope") if isinstance(data.get("envelope"), dict) else {}
    delivery = ids(str(envelope.get("sender", "")))
    status_of = data.get("delivery-status") if isinstance(data.get("delivery-status"), dict) else {}
    code = status_of.get("code")
    words = str(status_of.get("message") or status_of.get("description") or "")
    reply = f"{code} {words}".strip() if isinstance(code, int) else words
    status = str(status_of.get("enhanced-code") or "") or enhanced_code(words)
    at = when(data.get("timestamp"), now)
    key = (data.get("id"), data.get("recipient"))
    if name == "failed":
        if data.get("severity") == "temporary":
            kind = "delayed"
        elif data.get("reason") == "suppress-bounce":
            kind = "hard_bounce"  # Mailgun refused to send: the address bounced before
        elif isinstance(code, int) or status:
            kind = bounce_kind(status, reply)
        else:
            kind = "policy" if data.get("reason") in ("espblock", "generic", "old") else "soft_bounce"
    elif name == "complained":
        kind, status, reply = "complaint", "", "complained"
    elif name == "delivered":
        kind = "delivered"
    else:
        return []
    found = event("mailgun", delivery, kind, key, at, data.get("recipient"), status, reply)
    return [found] if found else []
