"""What a careful editor checks before a digest goes out (``--dry-run``, ``--preview``).

Each check looks at one finished message the way a mail client would (parsed back
with the standard library), not at the templates: the HTML part's bytes as sent
(after the transfer encoding) against Gmail's 102 KB clipping limit, a plain-text
part carrying every article, the unsubscribe header and links a bulk sender must
have (RFC 8058: https, one-click), and Message-ID and List-Id on a domain name
(an IP address there is a local test setup, and spam filters score it).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

from publisher.mail import GMAIL_CLIP_BYTES

__all__ = ["GMAIL_CLIP_BYTES", "Check", "check_message", "sent_bytes"]


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'} {self.name}: {self.detail}"


def check_message(message: bytes, titles: Sequence[str], links: Sequence[str]) -> list[Check]:
    msg = BytesParser(policy=policy.default).parsebytes(message)
    assert isinstance(msg, EmailMessage)
    html_part, text_part = msg.get_body(("html",)), msg.get_body(("plain",))
    html = html_part.get_content() if html_part is not None else ""
    text = text_part.get_content() if text_part is not None else ""
    size = sent_bytes(html_part) if html_part is not None else 0
    encoding = str(html_part.get("Content-Transfer-Encoding", "7bit")) if html_part is not None else ""
    checks = [
        Check(
            "html size",
            0 < size <= GMAIL_CLIP_BYTES,
            f"{size / 1024:.1f} KB as sent ({encoding}) of {GMAIL_CLIP_BYTES // 1024} KB"
            " (Gmail clips larger messages)",
        )
    ]
    flowing = " ".join(text.split())  # the text part wraps long lines
    missing = [
        t for t, u in zip(titles, links, strict=True) if " ".join(t.split()) not in flowing or u not in text
    ]
    checks.append(
        Check(
            "text part",
            text_part is not None and not missing,
            "missing: " + "; ".join(missing)
            if missing or text_part is None
            else f"all {len(titles)} articles with their links",
        )
    )
    unsubscribe = str(msg.get("List-Unsubscribe", ""))
    urls = [u.strip(" <>") for u in unsubscribe.split(",") if u.strip()]
    https = next((u for u in urls if u.startswith(("https://", "http://"))), "")
    problems = []
    if not https or not any(u.startswith("mailto:") for u in urls):
        problems.append("List-Unsubscribe lacks an https or a mailto URL")
    if https.startswith("http://"):
        problems.append(f"the unsubscribe URL is http, not https (one-click needs https): {https}")
    if msg.get("List-Unsubscribe-Post") != "List-Unsubscribe=One-Click":
        problems.append("no List-Unsubscribe-Post: List-Unsubscribe=One-Click")
    if https and (https not in html or https not in text):
        problems.append("no unsubscribe link in the " + ("HTML" if https not in html else "text") + " part")
    checks.append(
        Check("unsubscribe", not problems, "; ".join(problems) or "header, one-click and links present")
    )
    on_ip = [
        f"{name} {value} is on an IP address, not a domain name"
        for name in ("Message-ID", "List-Id")
        if (value := str(msg.get(name, ""))) and _on_ip_address(value)
    ]
    checks.append(Check("message ids", not on_ip, "; ".join(on_ip) or "Message-ID and List-Id on a domain"))
    return checks


def sent_bytes(part: EmailMessage) -> int:
    """The part's content as it travels: after the transfer encoding (what Gmail counts)."""
    payload = part.get_payload()
    assert isinstance(payload, str)
    return len(payload.encode("utf-8", "surrogateescape"))


def _on_ip_address(value: str) -> bool:
    """Whether an id's domain (after the "@" of a Message-ID, or the dotted List-Id,
    any leading labels dropped) is an IP address literal."""
    ident = value[value.rfind("<") + 1 :].rstrip("> ")
    domain = ident.rpartition("@")[2].strip("[]")
    if domain.lower().startswith("ipv6:"):
        return True
    labels = domain.split(".")
    for start in range(len(labels)):
        try:
            ipaddress.ip_address(".".join(labels[start:]))
        except ValueError:
            continue
        return True
    return False
