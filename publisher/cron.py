"""Cron expressions of ``[schedule]``: standard 5 fields (or 6 with seconds first)
as APScheduler 3 triggers. Checked when the configuration is read, used by the
scheduler."""

from __future__ import annotations

from datetime import tzinfo
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from apscheduler.triggers.cron import CronTrigger

_CRON_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]


def trigger(expr: str, tz: tzinfo) -> CronTrigger | None:
    """The trigger of ``expr`` in ``tz`` (None: ``""``, disabled); ValueError saying
    what is wrong with a bad one."""
    from apscheduler.triggers.cron import CronTrigger

    expr = expr.strip()
    if not expr:
        return None
    fields = expr.split()
    if len(fields) not in (5, 6):
        raise ValueError(
            f"{expr!r} must have 5 fields (minute hour day month weekday), or 6 with seconds first"
        )
    if len(fields) == 5:
        fields.insert(0, "0")
    second, minute, hour, day, month, weekday = fields
    try:
        return CronTrigger(
            second=second,
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=_weekdays(weekday),
            timezone=tz,
        )
    except ValueError as exc:
        raise ValueError(f"{expr!r} is not a valid cron: {exc}") from None


def _weekdays(field: str) -> str:
    """Standard cron weekdays (0 or 7 = Sunday) as APScheduler 3's names (it counts
    0 = Monday, so numbers are never passed through)."""
    if field in ("*", "?"):
        return "*"
    days: set[int] = set()
    for part in field.split(","):
        span, _, step_text = part.partition("/")
        if step_text and not step_text.isdigit():
            raise ValueError(f"bad weekday step {part!r}")
        step = int(step_text) if step_text else 1
        if span == "*":
            low, high = 0, 6
        elif "-" in span:
            first, last = span.split("-", 1)
            low, high = _day(first), _day(last)
        else:
            low = _day(span)
            high = 6 if step_text else low
        if high < low or step < 1:
            raise ValueError(f"bad weekday range {part!r}")
        days.update(d % 7 for d in range(low, high + 1, step))
    return ",".join(_CRON_DAYS[d] for d in sorted(days))


def _day(token: str) -> int:
    token = token.strip().lower()
    if token.isdigit() and 0 <= int(token) <= 7:
        return int(token)
    if token[:3] in _CRON_DAYS:
        return _CRON_DAYS.index(token[:3])
    raise ValueError(f"unknown weekday {token!r}")
