"""Publication dates as newsrooms write them, made timezone-aware.

Accepted: the export's own form ("26 May. 2025, 14:50"), ISO 8601 ("2025-05-26T14:50",
"2025-05-26 14:50:00+09:00", "2025-05-26"), RFC 2822 ("Mon, 26 May 2025 14:50:00 +0900")
and common English forms ("May 26, 2025 2:50 PM", "May 26, 2025, 2:50 p.m.",
"26 May 2025"), optionally followed by KST, UTC or GMT. A date without an offset or
zone is in the site's timezone. Implausible dates (before 1900, after 9000) are
refused like unreadable ones.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from zoneinfo import ZoneInfo

_ZONES: dict[str, ZoneInfo | timezone] = {
    "KST": timezone(timedelta(hours=9), "KST"),
    "UTC": UTC,
    "GMT": UTC,
}
_ZONE_NAME = re.compile(r"[ ,]\(?(KST|UTC|GMT)\)?$", re.IGNORECASE)

_FORMATS = (
    "%d %b %Y, %H:%M",
    "%d %b %Y %H:%M",
    "%d %B %Y, %H:%M",
    "%d %B %Y %H:%M",
    "%d %b %Y",
    "%d %B %Y",
    "%b %d, %Y, %H:%M",
    "%b %d, %Y %H:%M",
    "%b %d, %Y %I:%M %p",
    "%b %d, %Y, %I:%M %p",
    "%B %d, %Y, %I:%M %p",
    "%B %d, %Y %I:%M %p",
    "%B %d, %Y, %H:%M",
    "%B %d, %Y %H:%M",
    "%b %d, %Y",
    "%B %d, %Y",
    "%Y/%m/%d %H:%M",
    "%Y.%m.%d %H:%M",
    "%Y/%m/%d",
    "%Y.%m.%d",
)


def parse_date(value: str, tz: ZoneInfo) -> datetime | None:
    """An aware datetime, or None when ``value`` is no date we recognise."""
    text = " ".join(value.split())
    if not text:
        return None
    # "2:50 p.m." -> "2:50 PM"; then "26 May. 2025" / "Sept. 3, 2025": abbreviations
    # with a full stop.
    text = re.sub(r"\b([ap])\.?m\.?(?=\s|$)", lambda m: m.group(1).upper() + "M", text, flags=re.I)
    text = re.sub(r"\b([A-Za-z]{3,4})\.", lambda m: m.group(1)[:3], text)
    zone: ZoneInfo | timezone | None = None
    if m := _ZONE_NAME.search(text):  # "14:50 KST", "2025-05-26 05:50 UTC"
        zone = _ZONES[m.group(1).upper()]
        text = text[: m.start()].rstrip(" ,")
    parsed: datetime | None = None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        pass
    if parsed is None:
        for fmt in _FORMATS:
            try:
                parsed = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
    if parsed is None:
        try:
            parsed = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone or tz)
    return sane(parsed)


def sane(when: datetime) -> datetime | None:
    """``when`` in whole seconds if it is a plausible publication time (years 1900 to
    9000, an offset within a day), else None: a typo must not become an unstorable
    date, and no reader gets a fraction of a second it might misread."""
    try:
        offset = when.utcoffset()
    except (ValueError, OverflowError):
        return None
    if offset is None or abs(offset.total_seconds()) >= 86400 or not 1900 <= when.year <= 9000:
        return None
    return when.replace(microsecond=0)
