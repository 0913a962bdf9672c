"""Amazon SES notifications (the ``Message`` of a verified SNS notification): Bounce,
Complaint, Delivery and DeliveryDelay, as SES's feedback notifications
(``notificationType``) or its event publishing (``eventType``) write them.

A bounce's kind comes from the recipient's RFC 3463 ``status`` and
``diagnosticCode`` when SES gives them (``feedback.bounce_kind``, the one reading of
a code); without one, from SES's ``bounceType``/``bounceSubType``. The envelope
sender (``mail.source``) names the delivery when it is our VERP return path.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from publisher.esp import Ids, event, when
from publisher.feedback import Event, bounce_kind

# Without a status code: what SES's own classification means for the address.
_SUBTYPES = {
    ("Permanent", "General"): "hard_bounce",
    ("Permanent", "NoEmail"): "hard_bounce",
    ("Permanent", "Suppressed"): "hard_bounce",
    ("Permanent", "OnAccountSuppressionList"): "hard_bounce",
    ("Transient", "MessageTooLarge"): "policy",
    ("Transient", "ContentRejected"): "policy",
    ("Transient", "AttachmentRejected"): "policy",
}


def events(notification: dict[str, Any], ids: Ids, now: datetime) -> list[Event]:
    kind = notification.get("notificationType") or notification.get("eventType") or ""
    mail = notification.get("mail") if isinstance(notification.get("mail"), dict) else {}
    delivery = ids(str(mail.get("source", "")))
    make: Callable[..., Event] = lambda *a, **kw: event("ses", delivery, *a, **kw)  # noqa: E731
    out: list[Event] = []
    if kind == "Bounce":
        bounce = notification.get("bounce") or {}
        fallback = _SUBTYPES.get((bounce.get("bounceType"), bounce.get("bounceSubType")), "soft_bounce")
        at = when(bounce.get("timestamp"), now)
        for r in _list(bounce.get("bouncedRecipients")):
            status, diagnostic = str(r.get("status", "")), str(r.get("diagnosticCode", ""))
            found = bounce_kind(status, diagnostic) if status or diagnostic else fallback
            out.append(
                make(
                    found,
                    ("bounce", bounce.get("feedbackId"), r.get("emailAddress")),
                    at,
                    r.get("emailAddress"),
                    status,
                    diagnostic,
                )
            )
    elif kind == "Complaint":
        complaint = notification.get("complaint") or {}
        if complaint.get("complaintFeedbackType") != "not-spam":
            at = when(complaint.get("timestamp"), now)
            for r in _list(complaint.get("complainedRecipients")):
                feedback = str(complaint.get("complaintFeedbackType", "abuse"))
                out.append(
                    make(
                        "complaint",
                        ("complaint", complaint.get("feedbackId"), r.get("emailAddress")),
                        at,
                        r.get("emailAddress"),
                        "",
                        feedback,
                    )
                )
    elif kind == "Delivery":
        done = notification.get("delivery") or {}
        at = when(done.get("timestamp"), now)
        reply = str(done.get("smtpResponse", ""))
        for address in done.get("recipients") or []:
            out.append(
                make("delivered", ("delivery", mail.get("messageId"), address), at, address, "", reply)
            )
    elif kind == "DeliveryDelay":
        delay = notification.get("deliveryDelay") or {}
        at = when(delay.get("timestamp"), now)
        for r in _list(delay.get("delayedRecipients")):
            status, diagnostic = str(r.get("status", "")), str(r.get("diagnosticCode", ""))
            key = ("delay", mail.get("messageId"), r.get("emailAddress"), delay.get("timestamp"))
            out.append(make("delayed", key, at, r.get("emailAddress"), status, diagnostic))
    return [e for e in out if e is not None]


def _list(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []
