"""What an SMTP server's refusal means, read from its reply (RFC 5321 codes and the
RFC 3463 enhanced status codes that follow them).

One question decides what sending does with a refusal: *whose* problem is it?

- the recipient's: the address does not exist or its mailbox cannot take mail
  (5.1.x, 5.2.x, 5.4.x; a bare 5xx to RCPT). Only these count against the address
  (``bounce`` "now" for an address that cannot exist, "count" for the rest, which
  suppress it after ``bounce_limit`` of them);
- ours, or the message's: the sender, authentication, spam or content policy, the
  message's size, a broken conversation (5.7.x, 5.6.x, 5.3.x, 5.5.x, 5.2.3, 5.1.7/8;
  any 5xx to MAIL FROM or after the message was sent). The same message would be
  refused for everyone, so the run stops (``halt``) and every delivery stays queued:
  nobody's address is blamed for it;
- nobody's yet: 4xx (rate limits such as 421 and 4.7.x included) is temporary, never
  counted; the delivery is retried later.

The classification is a pure function of (stage, code, text) so that bounce handling
and deliverability reports share one reading of a reply. ``feedback_kind`` reads a
report that arrives later (a DSN's status and diagnostic, an ESP's bounce event) with
the same rules: what would count "now" is a hard bounce, what would be "count" a soft
one, and whatever is not the recipient's doing (policy, content, our sender) is a
"policy" refusal that never counts against the address.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Stage = Literal["mail", "rcpt", "data"]

# RFC 3463: class.subject.detail at the start of the text (each line of a multi-line
# reply repeats it; the first one is enough).
_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})(?!\d)")
# Servers that give no enhanced code still say so in words.
_NO_SUCH_USER = re.compile(
    r"user unknown|unknown user|no such user|no such (mail)?box|does not exist|doesn't exist"
    r"|not a valid (recipient|mailbox)|address rejected: user",
    re.IGNORECASE,
)
# x.1.y details about an address that cannot exist (RFC 3463 and RFC 7505 null MX):
# bad mailbox, bad system, bad syntax, moved, no mail accepted by the domain.
_ADDRESS_GONE = {1, 2, 3, 6, 10}
_SENDER_ADDRESS = {7, 8}  # x.1.7 bad sender mailbox syntax, x.1.8 bad sender system


@dataclass(frozen=True)
class Verdict:
    permanent: bool  # trying this delivery again cannot succeed
    bounce: str  # how it counts against the recipient's address: "now", "count" or ""
    halt: bool  # the server refuses our message or sender itself: stop sending this run
    reason: str  # a few words for the report: "no such address", "policy", ...


TEMPORARY = Verdict(False, "", False, "temporary")


def enhanced(text: str) -> tuple[int, int, int] | None:
    """The RFC 3463 enhanced status code at the start of a reply's text, if any."""
    found = _ENHANCED.match(text)
    return None if found is None else (int(found.group(1)), int(found.group(2)), int(found.group(3)))


def classify(stage: Stage, code: int, text: str) -> Verdict:
    """What a refusal of ``stage`` (MAIL FROM, RCPT TO, or the message after DATA)
    with ``code`` and ``text`` means for sending."""
    if code < 500:
        return TEMPORARY  # 4xx (and anything that is not a refusal) waits for a retry
    status = enhanced(text)
    if status is not None and status[0] != code // 100:
        status = None  # "550 4.1.1" contradicts itself: trust the basic code only
    if stage == "mail":
        return Verdict(True, "", True, "sender refused")
    if status is None:
        if stage == "rcpt":
            if _NO_SUCH_USER.search(text):
                return Verdict(True, "now", False, "no such address")
            return Verdict(True, "count", False, "recipient refused")
        return Verdict(True, "", True, "message refused")
    _, subject, detail = status
    if subject == 1:
        if detail in _SENDER_ADDRESS:
            return Verdict(True, "", True, "sender refused")
        if detail in _ADDRESS_GONE:
            return Verdict(True, "now", False, "no such address")
        return Verdict(True, "count", False, "address refused")
    if subject == 2:
        if detail == 1:  # mailbox disabled, not accepting messages
            return Verdict(True, "now", False, "mailbox disabled")
        if detail == 3:  # message length exceeds an administrative limit: the message's
            return Verdict(True, "", True, "message too large")
        return Verdict(True, "count", False, "mailbox unavailable")
    if subject == 4:  # routing to the recipient's domain failed
        return Verdict(True, "count", False, "recipient unreachable")
    if subject == 7:
        return Verdict(True, "", True, "policy")
    if subject == 0 and stage == "rcpt":  # "other or undefined" to RCPT: about the address
        return Verdict(True, "count", False, "recipient refused")
    # 5.3.x mail system, 5.5.x protocol, 5.6.x content, 5.0.0 after the message
    return Verdict(True, "", True, "message refused")


def feedback_kind(status: str, diagnostic: str = "") -> str:
    """How a bounce reported after the session counts: "hard_bounce" (the address
    cannot get mail: 5.1.x, 5.2.1, "no such user"), "soft_bounce" (mailbox full,
    4.x.x, other recipient failures: counted) or "policy" (the message or the sender
    was refused: never the recipient's doing). ``status`` is RFC 3463's ``5.1.1``
    (may be empty), ``diagnostic`` the server's reply, e.g. ``550 5.1.1 unknown``."""
    diagnostic = re.sub(r"^\s*[A-Za-z-]+\s*;", "", diagnostic).strip()  # RFC 3464 "smtp; 550 ..."
    code = re.match(r"([245])\d\d(?!\d)[\s-]*", diagnostic)
    text = diagnostic[code.end() :] if code else diagnostic
    found = enhanced(status) or enhanced(text)
    words = _ENHANCED.sub("", text, count=1).strip()  # the reply's words after any code
    if found is not None:
        klass, text = found[0], "{}.{}.{} {}".format(*found, words)
    else:
        klass = int(code.group(1)) if code else 5  # a failure report without any code
    if klass != 5:
        return "soft_bounce"  # 4.x.x: the receiving system gave up on a temporary failure
    verdict = classify("rcpt", 550, text)
    if verdict.bounce == "now":
        return "hard_bounce"
    return "soft_bounce" if verdict.bounce == "count" else "policy"


# What each code says, for reports (``publish deliverability``): RFC 3463 subjects and
# details with the IANA registry's additions (RFC 7372, 7505, 8601, 8689), and the
# basic RFC 5321 codes for servers that give no enhanced code.
_SUBJECTS = {
    0: "other or undefined status",
    1: "address status",
    2: "mailbox status",
    3: "mail system status",
    4: "network or routing status",
    5: "mail delivery protocol status",
    6: "message content or media status",
    7: "security or policy status",
}
_DETAILS = {
    (1, 1): "bad destination mailbox address",
    (1, 2): "bad destination system address",
    (1, 3): "bad destination mailbox address syntax",
    (1, 4): "destination mailbox address ambiguous",
    (1, 6): "destination mailbox has moved, no forwarding address",
    (1, 7): "bad sender's mailbox address syntax",
    (1, 8): "bad sender's system address",
    (1, 10): "recipient address has null MX",
    (2, 1): "mailbox disabled, not accepting messages",
    (2, 2): "mailbox full",
    (2, 3): "message length exceeds administrative limit",
    (2, 4): "mailing list expansion problem",
    (3, 1): "mail system full",
    (3, 2): "system not accepting network messages",
    (3, 4): "message too big for system",
    (3, 5): "system incorrectly configured",
    (4, 1): "no answer from host",
    (4, 2): "bad connection",
    (4, 4): "unable to route",
    (4, 5): "mail system congestion",
    (4, 6): "routing loop detected",
    (4, 7): "delivery time expired",
    (5, 1): "invalid command",
    (5, 2): "syntax error",
    (5, 3): "too many recipients",
    (5, 4): "invalid command arguments",
    (6, 1): "media not supported",
    (6, 3): "conversion required but not supported",
    (7, 0): "other security or policy refusal",
    (7, 1): "delivery not authorized, message refused",
    (7, 2): "mailing list expansion prohibited",
    (7, 7): "message integrity failure",
    (7, 8): "authentication credentials invalid",
    (7, 9): "authentication mechanism too weak",
    (7, 10): "encryption needed",
    (7, 13): "user account disabled",
    (7, 20): "no passing DKIM signature found",
    (7, 21): "no acceptable DKIM signature found",
    (7, 22): "no valid author-matched DKIM signature found",
    (7, 23): "SPF validation failed",
    (7, 24): "SPF validation error",
    (7, 25): "reverse DNS validation failed",
    (7, 26): "multiple authentication checks failed (DMARC)",
    (7, 27): "sender address has null MX",
    (7, 28): "mail flood detected: unusual rate of unsolicited mail",
    (7, 29): "ARC validation failure",
    (7, 30): "REQUIRETLS support required",
    (7, 515): "Microsoft: sending domain does not meet the required authentication level",
}
_BASIC = {
    250: "accepted",
    421: "service not available, closing the connection",
    450: "mailbox unavailable (busy or blocked)",
    451: "local error in processing",
    452: "insufficient system storage",
    550: "mailbox unavailable or refused",
    551: "user not local",
    552: "exceeded storage allocation",
    553: "mailbox name not allowed",
    554: "transaction failed",
}


def meaning(code: int | None, status: str = "") -> str:
    """A few words on what a reply says: its RFC 3463 detail (``5.7.26``: "multiple
    authentication checks failed (DMARC)"), else its subject, else the basic code's."""
    found = enhanced(status)
    if found is not None:
        klass, subject, detail = found
        if klass == 2:
            return "success"
        words = _DETAILS.get((subject, detail)) or _SUBJECTS.get(subject, "unknown status")
        return ("temporary: " if klass == 4 else "") + words
    return _BASIC.get(code or 0, "unknown reply")


def is_policy(status: str) -> bool:
    """A security or policy refusal (4.7.x or 5.7.x): about our mail, not the address."""
    found = enhanced(status)
    return found is not None and found[0] in (4, 5) and found[1] == 7


def reply_status(text: str) -> str:
    """The RFC 3463 status in a server's reply text ("550 5.7.1 ..." or "5.7.1 ..."), or ""."""
    found = enhanced(re.sub(r"^\s*[245]\d\d(?!\d)[\s-]*", "", text))
    return "{}.{}.{}".format(*found) if found else ""
