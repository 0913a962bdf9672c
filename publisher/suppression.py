"""The suppression list by hand: entries (an address, or ``@domain`` for a whole
domain) checked and kept in the canonical form of ``publisher.addresses``, and CSV.

Bounces and complaints add entries on their own (``publisher.feedback``); here an
operator adds, removes, imports and exports them. One CSV line per entry:
``entry,reason,created,expires,detail`` (times in ISO 8601, UTC).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from publisher.addresses import InvalidAddress, email_address, mailbox_key
from publisher.csvrows import Rejections, Rows
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
class ImportReport(Rejections):
    added: int = 0
    unchanged: int = 0


def import_csv(
    store: Store,
    text: str | Iterable[str],
    filename: str,
    now: datetime | None = None,
    on_problem: Callable[[str], None] | None = None,
) -> ImportReport:
    """Entries from a CSV with an ``entry`` (or ``email``) column and optionally
    ``reason``, ``created``, ``expires`` and ``detail`` (``text``: the file's text, or
    its lines: an open file is read as it goes, ``csvrows.BATCH`` rows at a time, each
    batch stored in one transaction); a bad line is reported by number (to
    ``on_problem`` as soon as its batch is stored) and skipped, the others are imported."""
    now = now or datetime.now(UTC)
    report = ImportReport()
    rows = Rows(text, filename)
    column = rows.column("entry", "email")

    def check(row: dict[str, str]) -> tuple[str, str, str, datetime, datetime | None]:
        entry = entry_of(row[column])
        reason = row.get("reason") or "manual"
        if reason not in REASONS:
            raise UsageError(f"unknown reason {reason!r} (known: {', '.join(REASONS)})")
        created = _parse_time(row.get("created", ""), "created") or now
        return (
            entry,
            reason,
            single_line(row.get("detail", "")),
            created,
            _parse_time(row.get("expires", ""), "expires"),
        )

    for batch in rows.batches(check):
        live = [entry for _, entry in batch.rows if entry[4] is None or entry[4] > now]
        report.unchanged += len(batch.rows) - len(live)  # suspensions that have already ended
        added = store.feedback.suppress_many(live)
        report.added += added
        report.unchanged += len(live) - added
        report.reject(batch.problems, on_problem)
    return report


def export_csv(entries: Iterable[Suppression], batch: int = 1000) -> Iterator[str]:
    """``entries`` as CSV text (``import_csv`` reads it back), ``batch`` lines at a time."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for i, s in enumerate(entries, 1):
        writer.writerow(
            [s.entry, s.reason, _time(s.created), _time(s.expires) if s.expires else "", s.detail]
        )
        if i % batch == 0:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()


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
