"""A relay on 127.0.0.1 that accepts every message (250, as a smarthost or an ESP
does) and afterwards bounces some of them the way a real MTA does: an RFC 3464
delivery status notification, sent to the message's envelope sender (our VERP return
path) and delivered into a Maildir, the return path's mailbox.

``fates[address] = (status, diagnostic)`` decides what happens to mail for
``address``; "5.1.1" no such user, "5.2.2" mailbox full, "5.7.1" refused as spam,
"4.4.7" gave up after retrying ... Addresses without a fate are delivered.
"""

from __future__ import annotations

import mailbox
import socket
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from email.utils import format_datetime, make_msgid
from pathlib import Path

from aiosmtpd.controller import Controller

REPORTING_MTA = "relay.example.net"


def dsn(
    to: str,
    recipient: str,
    status: str,
    diagnostic: str,
    original: bytes,
    *,
    action: str = "failed",
    message_id: str | None = None,
) -> bytes:
    """An RFC 3464 DSN as an MTA writes it: human-readable part, the
    message/delivery-status fields, the original message's headers."""
    headers = BytesParser(policy=policy.compat32).parsebytes(original, headersonly=True)
    head = "".join(f"{k}: {v}\n" for k, v in headers.items())
    now = format_datetime(datetime.now(UTC))
    code = diagnostic.split(" ", 1)[0]
    text = (
        f"From: Mail Delivery System <MAILER-DAEMON@{REPORTING_MTA}>\n"
        f"To: {to}\n"
        f"Subject: Undelivered Mail Returned to Sender\n"
        f"Date: {now}\n"
        f"Message-ID: {message_id or make_msgid(domain=REPORTING_MTA)}\n"
        "Auto-Submitted: auto-replied\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="dsn-boundary"\n'
        "\n"
        "This is a MIME-encapsulated message.\n"
        "\n--dsn-boundary\n"
        "Content-Description: Notification\n"
        "Content-Type: text/plain; charset=us-ascii\n"
        "\n"
        f"This is the mail system at host {REPORTING_MTA}.\n\n"
        "I'm sorry to have to inform you that your message could not\n"
        "be delivered to one or more recipients.\n\n"
        f"<{recipient}>: host mx.example.com said: {diagnostic}\n"
        "\n--dsn-boundary\n"
        "Content-Description: Delivery report\n"
        "Content-Type: message/delivery-status\n"
        "\n"
        f"Reporting-MTA: dns; {REPORTING_MTA}\n"
        f"Arrival-Date: {now}\n"
        "\n"
        f"Final-Recipient: rfc822; {recipient}\n"
        f"Original-Recipient: rfc822;{recipient}\n"
        f"Action: {action}\n"
        f"Status: {status}\n"
        "Remote-MTA: dns; mx.example.com\n"
        f"Diagnostic-Code: smtp; {diagnostic}\n"
        "\n--dsn-boundary\n"
        "Content-Description: Undelivered Message Headers\n"
        "Content-Type: text/rfc822-headers\n"
        "\n"
        f"{head}"
        "\n--dsn-boundary--\n"
    )
    assert code[:1] in "2345"
    return text.encode("utf-8")


@dataclass
class _Handler:
    returns: Path
    fates: dict[str, tuple[str, str]]
    accepted: list[tuple[str, str]] = field(default_factory=list)  # (MAIL FROM, RCPT TO)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001
        for rcpt in envelope.rcpt_tos:
            with self.lock:
                self.accepted.append((envelope.mail_from, rcpt))
                fate = self.fates.get(rcpt.lower())
                if fate is not None:
                    status, diagnostic = fate
                    action = "delayed" if status.startswith("4") and "delayed" in diagnostic else "failed"
                    report = dsn(
                        envelope.mail_from, rcpt, status, diagnostic, envelope.content, action=action
                    )
                    box = mailbox.Maildir(self.returns, factory=None, create=True)
                    box.add(report)
        return "250 2.0.0 Ok: queued"


class BounceRelay:
    """``with BounceRelay(returns_maildir, fates) as relay``: relay.port, relay.accepted."""

    def __init__(self, returns: Path, fates: dict[str, tuple[str, str]]) -> None:
        self.handler = _Handler(returns, {k.lower(): v for k, v in fates.items()})
        with socket.socket() as probe:  # a free port (the controller cannot take port 0)
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> BounceRelay:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    @property
    def accepted(self) -> list[tuple[str, str]]:
        return list(self.handler.accepted)
