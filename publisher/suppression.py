"""The suppression list by hand: entries (an address, or ``@domain`` for a whole
domain) checked and kept in the canonical form of ``publisher.addresses``, and CSV.

Bounces and complaints add entries on their own (``publisher.feedback``); here an
operator adds, removes, imports and exports them. One CSV line per entry:
``entry,reason,created,expires,detail`` (times in ISO 8601, UTC).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from publisher.addresses import InvalidAddress, email_address, mailbox_key
from publisher.errors import UsageError
from publisher.models import Suppression
from publisher.store import Store
from publisher.text import single_line

REASONS = ("complaint", "hard_bounce", "soft_bounce", "manual")
COLUMNS = ("entry", "reason", "created", "expires", "detail")


def entry_of(text: str) -> str:
    """The canonical entry for an address or ``@domain``; UsageError naming it."""
    text = text.strip()
    try:
        if text.startswith("@"):
            domain = email_address("postmaster" + text).rpartition("@")[2]
            return "@" + domain
        return mailbox_key(text)
    except InvalidAddress as exc:
        what = "domain" if text.startswith("@") else "email address"
        raise UsageError(f"{text!r} is not a valid {what}: {exc}") from None


def add(store: Store, text: str, detail: str = "", now: datetime | None = None) -> tuple[str, bool]:
    """Suppress ``text`` by hand; (the entry, whether it is new or made stronger)."""
    entry = entry_of(text)
    return entry, store.feedback.suppress(entry, "manual", single_line(detail), now or datetime.now(UTC))


def remove(store: Store, text: str) -> str:
    entry = entry_of(text)
    if not store.feedback.unsuppress(entry):
        raise UsageError(f"{entry} is not on the suppression list")
    return entry


def line(s: Suppression) -> str:
    """One entry for ``publish suppressions list``."""
    until = f"until {_time(s.expires)}" if s.expires else "until removed"
    return "\t".join([s.entry, s.reason, _time(s.created), until, s.detail])


@dataclass
class ImportReport:
    added: int = 0
    unchanged: int = 0
    problems: list[str] = field(default_factory=list)


def import_csv(store: Store, text: str, filename: str, now: datetime | None = None) -> ImportReport:
    """Entries from a CSV with an ``entry`` (or ``email``) column and optionally
    ``reason``, ``created``, ``expires`` and ``detail``; a bad line is reported by
    number and skipped, the others are imported."""
    now = now or datetime.now(UTC)
    report = ImportReport()
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    names = [(f or "").strip().lower() for f in reader.fieldnames or []]
    column = "entry" if "entry" in names else "email" if "email" in names else None
    if column is None:
        raise UsageError(f"{filename}: no 'entry' (or 'email') column in the header line")
    for row in reader:
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
        where = f"{filename}:{reader.line_num}"
        try:
            entry = entry_of(row[column])
            reason = row.get("reason") or "manual"
            if reason not in REASONS:
                raise UsageError(f"unknown reason {reason!r} (known: {', '.join(REASONS)})")
            created = _parse_time(row.get("created", ""), "created") or now
            expires = _parse_time(row.get("expires", ""), "expires")
        except UsageError as exc:
            report.problems.append(f"{where}: {exc}")
            continue
        if expires is not None and expires <= now:
            report.unchanged += 1  # a suspension that has already ended
            continue
        if store.feedback.suppress(entry, reason, single_line(row.get("detail", "")), created, expires):
            report.added += 1
        else:
            report.unchanged += 1
    return report


def export_csv(entries: Iterable[Suppression]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for s in entries:
        writer.writerow(
            [s.entry, s.reason, _time(s.created), _time(s.expires) if s.expires else "", s.detail]
        )
    return out.getvalue()


def _time(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds") if value else ""


def _parse_time(value: str, column: str) -> datetime | None:
    if not value:
        return None
    try:
        found = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{column}: {value!r} is not an ISO 8601 time") from None
    return found if found.tzinfo else found.replace(tzinfo=UTC)
