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
