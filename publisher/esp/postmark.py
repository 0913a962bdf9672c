"""Postmark webhooks: one JSON object per request (``RecordType`` Bounce,
SpamComplaint, Delivery, ...).

Postmark authenticates its webhooks with the basic auth credentials set in the
webhook's URL (``https://user:password@host/webhooks/postmark``): without them the
answer is 401 with a Basic challenge; wrong ones, 403. Both parts are compared in
constant time, whatever their length.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
from datetime import datetime
from typing import Any

from publisher.errors import Rejected
from publisher.esp import enhanced_code, event, when
from publisher.feedback import Event, bounce_kind

_REPLY = re.compile(r"[245]\d\d[\s-]")


def verify(authorization: str, body: bytes, user: str, password: str) -> dict[str, Any]:
    """The record of a request carrying the configured credentials; else ``Rejected``."""
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        raise Rejected(401, "no basic auth credentials")
    try:
        given_user, _, given_password = (
            base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
        )
    except (binascii.Error, ValueError):
        raise Rejected(403, "unreadable basic auth credentials") from None
    ok_user = hmac.compare_digest(given_user.encode("utf-8"), user.encode("utf-8"))
    ok_password = hmac.compare_digest(given_password.encode("utf-8"), password.encode("utf-8"))
    if not (ok_user and ok_password):
        raise Rejected(403, "wrong basic auth credentials")
    try:
        record = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Rejected(400, "a Postmark request that is not JSON") from None
    if not isinstance(record, dict):
        raise Rejected(400, "a Postmark request that is not one JSON object")
    return record


# Postmark's bounce types (``Type``) where the report carries no status code.
_TYPES = {
    "HardBounce": "hard_bounce",
    "BadEmailAddress": "hard_bounce",
    "SoftBounce": "soft_bounce",
    "Transient": "soft_bounce",
    "DnsError": "soft_bounce",
    "Blocked": "policy",
    "SpamNotification": "policy",
    "VirusNotification": "policy",
    "DMARCPolicy": "policy",
    "SpamComplaint": "complaint",
}


def events(record: dict[str, Any], now: datetime) -> list[Event]:
    """Bounce, SpamComplaint and Delivery records; other records (opens, clicks,
    subscription changes, auto-replies) are no feedback and give none."""
    kind = record.get("RecordType")
    if kind == "Delivery":
        address = record.get("Recipient")
        key = ("delivery", record.get("MessageID"), address)
        found = event(
            "postmark",
            None,
            "delivered",
            key,
            when(record.get("DeliveredAt"), now),
            address,
            "",
            str(record.get("Details", "")),
        )
        return [found] if found else []
    if kind not in ("Bounce", "SpamComplaint"):
        return []
    bounce_type = "SpamComplaint" if kind == "SpamComplaint" else str(record.get("Type", ""))
    fallback = _TYPES.get(bounce_type)
    if fallback is None:
        return []
    details = str(record.get("Details", "") or record.get("Description", ""))
    status = ""
    if fallback != "complaint":
        status = enhanced_code(details)
        if status or _REPLY.match(details.partition(";")[2].strip() or details):
            fallback = bounce_kind(status, details)
    at = when(record.get("BouncedAt"), now)
    found = event(
        "postmark", None, fallback, ("bounce", record.get("ID")), at, record.get("Email"), status, details
    )
    return [found] if found else []
