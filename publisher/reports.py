"""Reading what comes back to the return path: one mail in, ``publisher.feedback``
events out.

- RFC 3464 delivery status notifications (``multipart/report;
  report-type=delivery-status``): one event per recipient block, its kind read from
  ``Action``, ``Status`` and ``Diagnostic-Code`` (``feedback.bounce_kind``);
- RFC 5965 ARF complaint reports (``report-type=feedback-report``): a complaint for
  any ``Feedback-Type`` but ``not-spam``;
- anything else goes to flufl.bounce (Mailman's detectors for the common non-standard
  bounce shapes: qmail, Exim, Exchange, Yahoo, ...).

Which delivery a report is about comes first from the address it was sent to: our
VERP return path (``Messages.delivery_named``, a forged token names nothing), then the
Message-ID of our mail quoted in the report (it ends in the subscriber's public id),
then the recipient the report names. A report's key is its own Message-ID (else a hash
of the whole mail) with the recipient and status, so reading it twice counts once.

A mail that yields no event is either ignorable (an automatic reply such as an
out-of-office, a "not spam" report, a delay notice with no recipient we know) or
unreadable: the intake keeps the latter and reports it.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime

from flufl.bounce import all_failures

from publisher.feedback import Event, bounce_kind, event_key
from publisher.text import single_line

# flufl.bounce logs a traceback before re-raising a detector's exception; a malformed
# mail is ours to report in one line (it is kept unread), never with a traceback.
logging.getLogger("flufl.bounce").setLevel(logging.CRITICAL)

# Headers where a mail system records the address a mail was delivered to.
_ENVELOPE_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To")
_PUBLIC_ID = re.compile(r"^[0-9a-f]{24}$")


@dataclass(frozen=True)
class Delivery:
    """What we know of the delivery a report is about."""

    issue_id: int | None = None
    subscriber_id: int | None = None


@dataclass
class Reading:
    """The events read from one mail; none: ``ignored`` says why it needs nothing,
    else it is unreadable (``problem`` says what was missing)."""

    events: list[Event] = field(default_factory=list)
    ignored: str = ""
    problem: str = ""
    subject: str = ""
    sender: str = ""


class Reader:
    """Reads reports for one site. ``named(address)`` gives (issue id, subscriber id)
    for one of our VERP addresses; ``by_public_id(id)`` a subscriber id."""

    def __init__(
        self,
        named: Callable[[str], tuple[int, int] | None],
        by_public_id: Callable[[str], int | None],
    ) -> None:
        self.named = named
        self.by_public_id = by_public_id

    def read(self, raw: bytes, envelope_to: Iterable[str] = (), now: datetime | None = None) -> Reading:
        """The events in ``raw``; ``envelope_to``: the addresses the mail system says
        it was delivered to (a mail pipe's environment), tried before the headers."""
        now = now or datetime.now(UTC)
        msg = BytesParser(policy=policy.default).parsebytes(raw)
        assert isinstance(msg, EmailMessage)
        reading = Reading(subject=_header(msg, "Subject"), sender=_header(msg, "From"))
        identity = _header(msg, "Message-ID") or hashlib.sha256(raw).hexdigest()
        delivery = self._verp(msg, envelope_to)
        report = msg.get_param("report-type", "", header="content-type")
        kind = str(report).lower() if msg.get_content_type() == "multipart/report" else ""
        when = _date(_header(msg, "Date")) or now
        if kind == "delivery-status":
            reading.events = self._dsn(msg, identity, delivery, when)
        elif kind == "feedback-report":
            reading.events, reading.ignored = self._arf(msg, identity, delivery, when)
        if not reading.events and not reading.ignored:
            reading.events = self._non_standard(msg, identity, delivery, when)
        if not reading.events and not reading.ignored:
            reading.ignored = _automatic_reply(msg)
        if not reading.events and not reading.ignored:
            reading.problem = (
                "a delivery report naming no recipient" if kind else "neither a bounce nor a complaint report"
            )
        return reading

    # -- which delivery ----------------------------------------------------------------

    def _verp(self, msg: Message, envelope_to: Iterable[str]) -> Delivery:
        candidates = list(envelope_to)
        for name in _ENVELOPE_HEADERS:
            candidates += [a for _, a in getaddresses([str(v) for v in msg.get_all(name, [])])]
        for address in candidates:
            found = self.named(address)
            if found is not None:
                return Delivery(issue_id=found[0] or None, subscriber_id=found[1])
        return Delivery()

    def _quoted(self, msg: Message, delivery: Delivery) -> Delivery:
        """The delivery, or failing the VERP address, the subscriber whose public id
        ends the Message-ID of our mail quoted in the report."""
        if delivery.subscriber_id is not None:
            return delivery
        for part in msg.walk():
            if part.get_content_type() not in ("message/rfc822", "text/rfc822-headers"):
                continue
            original = _original(part)
            if original is None:
                continue
            found = self.named(_addr(original.get("Return-Path", "")))
            if found is not None:
                return Delivery(found[0] or None, found[1])
            local = _addr(original.get("Message-ID", "")).rpartition("@")[0]
            public_id = local.rpartition(".")[2]
            if _PUBLIC_ID.match(public_id):
                sid = self.by_public_id(public_id)
                if sid is not None:
                    return Delivery(None, sid)
        return delivery

    # -- the three shapes --------------------------------------------------------------

    def _dsn(self, msg: EmailMessage, identity: str, delivery: Delivery, when: datetime) -> list[Event]:
        delivery = self._quoted(msg, delivery)
        events = []
        for part in msg.walk():
            if part.get_content_type() not in ("message/delivery-status", "message/global-delivery-status"):
                continue
            blocks = part.get_payload()
            if not isinstance(blocks, list) or not blocks:
                continue
            arrival = _date(str(blocks[0].get("Arrival-Date", ""))) or when
            for block in blocks[1:]:
                recipient = _typed(block.get("Final-Recipient") or block.get("Original-Recipient") or "")
                if not recipient and delivery.subscriber_id is None:
                    continue
                status = _status(str(block.get("Status", "")))
                diagnostic = single_line(str(block.get("Diagnostic-Code", "")))[:1000]
                action = str(block.get("Action", "failed"))
                at = _date(str(block.get("Last-Attempt-Date", ""))) or arrival
                key = event_key("dsn", identity, recipient, action.lower().strip(), status)
                events.append(_bounce("dsn", key, delivery, at, recipient, status, diagnostic, action))
        return events

    def _arf(
        self, msg: EmailMessage, identity: str, delivery: Delivery, when: datetime
    ) -> tuple[list[Event], str]:
        delivery = self._quoted(msg, delivery)
        fields: Message | None = None
        for part in msg.walk():
            if part.get_content_type() == "message/feedback-report":
                payload = part.get_payload()
                if isinstance(payload, list) and payload:
                    fields = payload[0]
                elif isinstance(payload, str):
                    fields = BytesParser(policy=policy.default).parsebytes(payload.encode("utf-8", "replace"))
                break
        if fields is None:
            return [], ""
        feedback_type = str(fields.get("Feedback-Type", "")).strip().lower()
        if feedback_type == "not-spam":
            return [], "a 'not spam' report"
        recipient = _addr(str(fields.get("Original-Rcpt-To", "")))
        if not recipient:
            for part in msg.walk():
                original = (
                    _original(part)
                    if part.get_content_type() in ("message/rfc822", "text/rfc822-headers")
                    else None
                )
                if original is not None:
                    recipient = _addr(str(original.get("To", "")))
                    break
        if not recipient and delivery.subscriber_id is None:
            return [], ""
        at = _date(str(fields.get("Arrival-Date", "") or fields.get("Received-Date", ""))) or when
        event = Event(
            kind="complaint",
            key=event_key("arf", identity, recipient),
            source="arf",
            at=at,
            address=recipient,
            issue_id=delivery.issue_id,
            subscriber_id=delivery.subscriber_id,
            diagnostic=f"Feedback-Type: {feedback_type or 'abuse'}",
        )
        return [event], ""

    def _non_standard(
        self, msg: EmailMessage, identity: str, delivery: Delivery, when: datetime
    ) -> list[Event]:
        delivery = self._quoted(msg, delivery)
        try:
            temporary, permanent = all_failures(msg)
        except Exception:  # a detector tripped over a malformed mail: it stays unread, kept
            temporary, permanent = frozenset(), frozenset()
        text = _text(msg)
        events = []
        for failures, action in ((permanent, "failed"), (temporary - permanent, "delayed")):
            for found in sorted(failures):
                recipient = found.decode("utf-8", "replace") if isinstance(found, bytes) else str(found)
                diagnostic = _near(text, recipient)
                key = event_key("bounce", identity, recipient.lower(), action)
                status = _status_in(diagnostic)
                events.append(_bounce("bounce", key, delivery, when, recipient, status, diagnostic, action))
        if not events and delivery.subscriber_id is not None and _looks_like_a_bounce(msg):
            diagnostic = _near(text, "")
            key = event_key("verp", identity)
            events.append(
                _bounce("verp", key, delivery, when, "", _status_in(diagnostic), diagnostic, "failed")
            )
        return events


# -- small readers ------------------------------------------------------------------------


def _bounce(
    source: str,
    key: str,
    delivery: Delivery,
    at: datetime,
    recipient: str,
    status: str,
    diagnostic: str,
    action: str,
) -> Event:
    return Event(
        kind=bounce_kind(status, diagnostic, action=action),
        key=key,
        source=source,
        at=at,
        address=recipient,
        issue_id=delivery.issue_id,
        subscriber_id=delivery.subscriber_id,
        status=status,
        diagnostic=diagnostic,
    )


def _header(msg: Message, name: str) -> str:
    try:
        return single_line(str(msg.get(name, "") or ""))
    except Exception:  # a header the parser could not decode is no identity
        return ""


def _addr(value: str) -> str:
    found = getaddresses([value])
    return found[0][1].strip() if found and "@" in found[0][1] else ""


def _typed(value: str) -> str:
    """The address of an RFC 3464 ``rfc822; user@example.com`` field."""
    _, _, address = str(value).rpartition(";")
    return _addr(address.strip())


def _status(value: str) -> str:
    found = re.match(r"\s*([245]\.\d{1,3}\.\d{1,3})", value)
    return found.group(1) if found else ""


def _status_in(text: str) -> str:
    """An RFC 3463 code anywhere in a non-standard bounce's line ("... (#5.1.1)")."""
    found = re.search(r"(?<![\d.])([245]\.\d{1,3}\.\d{1,3})(?![\d.])", text)
    return found.group(1) if found else ""


def _date(value: str) -> datetime | None:
    if not value:
        return None
    try:
        found = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return found if found.tzinfo else found.replace(tzinfo=UTC)


def _original(part: Message) -> Message | None:
    """The headers of our mail quoted in a report (message/rfc822 or text/rfc822-headers)."""
    payload = part.get_payload()
    if isinstance(payload, list) and payload:
        return payload[0]
    if isinstance(payload, str):
        return BytesParser(policy=policy.default).parsebytes(
            payload.encode("utf-8", "replace"), headersonly=True
        )
    return None


def _text(msg: EmailMessage) -> str:
    parts = []
    for part in msg.walk():
        if part.get_content_type() == "text/plain":
            try:
                parts.append(str(part.get_content()))
            except (LookupError, ValueError):  # an unknown charset
                parts.append(
                    part.get_payload(decode=True).decode("latin-1") if part.get_payload(decode=True) else ""
                )
    return "\n".join(parts)


def _near(text: str, address: str) -> str:
    """The server's words about ``address`` in a bounce's text: the first line with
    an SMTP reply code after the line naming it (or anywhere, for no address)."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if address and address.lower() in line.lower()), 0)
    for line in lines[start : start + 6] + lines:
        if re.search(r"\b[45]\d\d\b|\b[45]\.\d{1,3}\.\d{1,3}\b", line):
            return single_line(line)[:1000]
    return ""


def _looks_like_a_bounce(msg: Message) -> bool:
    sender = _addr(str(msg.get("From", ""))).lower()
    return (
        sender.split("@")[0] in ("mailer-daemon", "postmaster")
        or msg.get_content_type() == "multipart/report"
    )


def _automatic_reply(msg: Message) -> str:
    """Why ``msg`` needs nothing (an automatic reply, not a report), else ""."""
    submitted = str(msg.get("Auto-Submitted", "no")).strip().lower()
    if submitted.startswith("auto-replied"):
        return "an automatic reply (Auto-Submitted: auto-replied)"
    if msg.get("X-Autoreply") or msg.get("X-Autorespond"):
        return "an automatic reply"
    subject = str(msg.get("Subject", "")).lower()
    if any(w in subject for w in ("out of office", "auto-reply", "autoreply", "automatic reply", "vacation")):
        return "an automatic reply (out of office)"
    return ""
