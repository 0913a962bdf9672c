"""The audience: managing the subscriber list: checked addresses, explicit state changes, CSV.

Addresses are checked and kept in the canonical form ``publisher.addresses`` gives
them: ASCII (punycode domains), lower-cased, so "Reader@Example.COM" and
"reader@example.com" are one subscriber.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from publisher.addresses import InvalidAddress, mailbox_key
from publisher.errors import UsageError
from publisher.models import Subscriber
from publisher.store import Store
from publisher.text import single_line


def normalise(address: str) -> str:
    """The canonical form of an address (``addresses.mailbox_key``), or UsageError
    naming it and the problem."""
    try:
        return mailbox_key(address)
    except InvalidAddress as exc:
        raise UsageError(f"{address!r} is not a valid email address: {exc}") from None


def add(store: Store, address: str, name: str = "", *, resubscribe: bool = False) -> tuple[Subscriber, str]:
    """Add an active subscriber; return it and what happened ("added", "already",
    "reactivated"). An unsubscribed or bounced address needs ``resubscribe``."""
    email = normalise(address)
    name = single_line(name)
    now = datetime.now(UTC)
    existing = store.subscribers.get(email)
    if existing is None:
        return store.subscribers.add(email, name, "active", now), "added"
    if existing.status == "active":
        return existing, "already"
    if existing.status in ("unsubscribed", "bounced") and not resubscribe:
        raise UsageError(
            f"{email} is {existing.status}; add it again only with their consent, using --resubscribe"
        )
    store.subscribers.set_status(email, "active", now, name=name or existing.name)
    found = store.subscribers.get(email)
    assert found is not None
    return found, "reactivated"


def remove(store: Store, address: str) -> Subscriber:
    email = normalise(address)
    existing = store.subscribers.get(email)
    if existing is None:
        raise UsageError(f"{email} is not a subscriber")
    store.subscribers.set_status(email, "unsubscribed", datetime.now(UTC))
    found = store.subscribers.get(email)
    assert found is not None
    return found


@dataclass
class ImportReport:
    added: int = 0
    already: int = 0
    reactivated: int = 0
    problems: list[str] = field(default_factory=list)


def import_csv(store: Store, text: str, filename: str, *, resubscribe: bool = False) -> ImportReport:
    """Import rows with an ``email`` column (and optionally ``name``); bad rows are
    reported by line number and skipped, good ones are still imported. New addresses
    go in together (a list of 100,000 takes seconds); known ones one by one."""
    report = ImportReport()
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    if reader.fieldnames is None or "email" not in [f.strip().lower() for f in reader.fieldnames]:
        raise UsageError(f"{filename}: no 'email' column in the header line")
    rows: dict[str, tuple[int, str]] = {}  # email -> (line, name), first occurrence wins
    problems: list[tuple[int, str]] = []
    for row in reader:
        row = {(k or "").strip().lower(): (v or "") for k, v in row.items()}
        try:
            email = normalise(row["email"])
        except UsageError as exc:
            problems.append((reader.line_num, f"{filename}:{reader.line_num}: {exc}"))
            continue
        if email in rows:
            report.already += 1
        else:
            rows[email] = (reader.line_num, single_line(row.get("name", "")))
    known = store.subscribers.statuses(rows)
    fresh = [(email, name) for email, (_, name) in rows.items() if email not in known]
    report.added += store.subscribers.add_many(fresh, "active", datetime.now(UTC))
    for email in known:
        line, name = rows[email]
        try:
            _, outcome = add(store, email, name, resubscribe=resubscribe)
        except UsageError as exc:
            problems.append((line, f"{filename}:{line}: {exc}"))
            continue
        setattr(report, outcome, getattr(report, outcome) + 1)
    report.problems = [message for _, message in sorted(problems)]
    return report


def export_csv(subscribers: Iterable[Subscriber]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["email", "name", "status", "created"])
    for s in subscribers:
        writer.writerow([s.email, s.name, s.status, s.created.isoformat() if s.created else ""])
    return out.getvalue()
