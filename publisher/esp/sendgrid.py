"""SendGrid's Signed Event Webhook: a JSON array of events.

Verified per Twilio SendGrid's documentation: ``X-Twilio-Email-Event-Webhook-Signature``
is a base64 ECDSA (P-256, SHA-256) signature over the
``X-Twilio-Email-Event-Webhook-Timestamp`` header's value followed by the raw body,
checked with the verification key SendGrid shows (base64 DER, or PEM); a timestamp
further than ``webhooks.max_age`` seconds from now is stale.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

from publisher.errors import Rejected
from publisher.esp import enhanced_code, event, fresh, when
from publisher.feedback import Event, bounce_kind

SIGNATURE = "x-twilio-email-event-webhook-signature"
TIMESTAMP = "x-twilio-email-event-webhook-timestamp"


def load_key(text: str) -> Any:
    """The verification key from its base64 DER or PEM text; ValueError if it is not a P-256 key."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key

    text = text.strip()
    if text.startswith("-----BEGIN"):
        key = load_pem_public_key(text.encode("ascii"))
    else:
        key = load_der_public_key(base64.b64decode(text, validate=True))
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ValueError("not an ECDSA P-256 public key")
    return key


def verify(
    headers: dict[str, str], body: bytes, key: Any, now: datetime, max_age: int
) -> list[dict[str, Any]]:
    """The events of a genuine, fresh request; else ``Rejected``."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    signature, timestamp = headers.get(SIGNATURE, ""), headers.get(TIMESTAMP, "")
    if not signature or not timestamp:
        raise Rejected(401, "no SendGrid signature headers")
    try:
        key.verify(
            base64.b64decode(signature, validate=True),
            timestamp.encode("utf-8") + body,
            ec.ECDSA(hashes.SHA256()),
        )
    except (InvalidSignature, ValueError):
        raise Rejected(403, "the SendGrid signature does not match") from None
    fresh(timestamp, now, max_age, "SendGrid")
    try:
        events = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Rejected(400, "a SendGrid request that is not JSON") from None
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise Rejected(400, "a SendGrid request that is not an array of events")
    return events


def events(items: list[dict[str, Any]], now: datetime) -> list[Event]:
    """``bounce`` (and ``blocked``) read from its reply, ``deferred`` (delayed),
    ``spamreport`` (a complaint) and ``delivered``; others give none."""
    out: list[Event] = []
    for item in items:
        name = item.get("event")
        reply = str(item.get("reason") or item.get("response") or "")
        status = str(item.get("status") or "") or enhanced_code(reply)
        if name == "bounce":
            kind = bounce_kind(status, reply)
        elif name == "deferred":
            kind = "delayed"
        elif name == "spamreport":
            kind, status, reply = "complaint", "", "spamreport"
        elif name == "delivered":
            kind = "delivered"
        else:
            continue
        key = (item.get("sg_event_id") or (item.get("sg_message_id"), name, item.get("timestamp")),)
        found = event(
            "sendgrid", None, kind, key, when(item.get("timestamp"), now), item.get("email"), status, reply
        )
        if found is not None:
            out.append(found)
    return out
