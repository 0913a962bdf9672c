"""Mail to the digest's own address that is not an unsubscribe request reaches a person.

The digest's From address is piped to ``publish subscribers unsubscribe-mail``
(its List-Unsubscribe mailto: link). Readers write to it too: replies from mail
clients that ignore Reply-To, "please take me off" without the token, questions.
``forward`` sends such a mail on to ``digest.reply_to``, through the configured
delivery transport, as an attachment (message/rfc822) of a new message from the
digest's address: the original arrives whole (headers and all), our forward
passes SPF/DMARC as our own mail, and its Reply-To is the reader, so answering
it answers them. Automatic mail (out-of-office replies,
bounces, anything Auto-Submitted, RFC 3834) is not forwarded: a person does
not want one per subscriber per digest, and two autoresponders must not loop.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, make_msgid, parseaddr

from publisher.config import Config
from publisher.delivery import open_transport
from publisher.mail import DkimSigner
from publisher.text import single_line


def automatic(message: EmailMessage) -> str | None:
    """Why ``message`` is machine-made mail (not to forward), or None for a person's."""
    submitted = str(message.get("Auto-Submitted", "no")).strip().lower()
    if submitted != "no":
        return f"Auto-Submitted: {submitted}"
    if message.get_content_type() == "multipart/report":
        return "a delivery report"
    precedence = str(message.get("Precedence", "")).strip().lower()
    if precedence in ("bulk", "list", "junk", "auto_reply"):
        return f"Precedence: {precedence}"
    sender = parseaddr(str(message.get("From", "")))[1].lower()
    if sender.split("@")[0] in ("mailer-daemon", "postmaster") or not sender:
        return "from " + (sender or "no address")
    return None


def forward(config: Config, raw: bytes, why: str) -> str:
    """Forward ``raw`` (a mail to the digest's address) to ``digest.reply_to``;
    returns the line to print. Raises ``DeliveryError`` when the transport refused
    it (the mail pipe then asks the mail server to try again later)."""
    original = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(original, EmailMessage)
    machine = automatic(original)
    if machine is not None:
        return f"ignored: an automatic mail ({machine}), not forwarded"
    reader = single_line(str(original.get("From", "")))
    subject = single_line(str(original.get("Subject", "")))
    sender = config.digest.from_
    target = config.digest.reply_to
    mail = EmailMessage(policy=policy.SMTP)
    mail["From"] = sender
    mail["To"] = target
    if reader:
        mail["Reply-To"] = reader
    mail["Subject"] = f"Fwd: {subject}" if subject else "Fwd: (no subject)"
    mail["Date"] = format_datetime(datetime.now(UTC))
    mail["Message-ID"] = make_msgid("forward", domain=parseaddr(sender)[1].rpartition("@")[2] or None)
    mail["Auto-Submitted"] = "auto-forwarded"
    mail.set_content(
        f"{reader or 'Someone'} wrote to the digest's address ({parseaddr(sender)[1]}); "
        f"it is not an unsubscribe request ({why}).\n"
        "Their mail is attached; replying to this message answers them.\n"
    )
    mail.add_attachment(original, disposition="inline")
    data = mail.as_bytes()
    d = config.delivery
    if d.dkim_key_file:
        data = DkimSigner.from_file(d.dkim_selector, d.dkim_domain, d.dkim_key_file).sign(data)
    transport = open_transport(d)
    try:
        transport.send(parseaddr(sender)[1], parseaddr(target)[1], data)
    finally:
        transport.close()
    return f"forwarded to {parseaddr(target)[1]}: a mail from {reader or 'an unknown sender'} ({why})"
