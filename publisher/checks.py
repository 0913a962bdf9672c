"""What a careful editor checks before a digest goes out (``--dry-run``, ``--preview``).

Each check looks at one finished message the way a mail client would (parsed back
with the standard library), not at the templates: the HTML part against Gmail's
102 KB clipping limit, a plain-text part carrying every article, and the
unsubscribe header and links a bulk sender must have (RFC 8058).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

GMAIL_CLIP_BYTES = 102 * 1024


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
    size = len(html.encode("utf-8"))
    checks = [
        Check(
            "html size",
            0 < size < GMAIL_CLIP_BYTES,
            f"{size / 1024:.1f} KB of {GMAIL_CLIP_BYTES // 1024} KB (Gmail clips larger messages)",
        )
    ]
    missing = [t for t, u in zip(titles, links, strict=True) if t not in text or u not in text]
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
    if msg.get("List-Unsubscribe-Post") != "List-Unsubscribe=One-Click":
        problems.append("no List-Unsubscribe-Post: List-Unsubscribe=One-Click")
    if https and (https not in html or https not in text):
        problems.append("no unsubscribe link in the " + ("HTML" if https not in html else "text") + " part")
    checks.append(
        Check("unsubscribe", not problems, "; ".join(problems) or "header, one-click and links present")
    )
    return checks
