"""The audience: managing the subscriber list: checked addresses, explicit state changes,
which newsletters (and sections) each reader gets, CSV.

Addresses are checked and kept in the canonical form ``publisher.addresses`` gives
them: ASCII (punycode domains), lower-cased, so "Reader@Example.COM" and
"reader@example.com" are one subscriber.

Choices of newsletters and sections are checked here against the configuration
(``choices``): an unknown newsletter key, sections for a newsletter that offers no
choice, or a section a newsletter does not carry are a ``UsageError`` naming it.
Sections are kept as slugs (``links.category_slug``); choosing every section a
newsletter carries is kept as "all" (an empty list), so the reader gets sections the
newsletter adds later. The store applies the rules that join the address's status
and its subscriptions (``store.subscriptions``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from publisher.addresses import InvalidAddress, mailbox_key
from publisher.config import Config, Newsletter
from publisher.csvrows import BATCH, Rejections, Rows
from publisher.errors import UsageError
from publisher.links import category_slug
from publisher.models import Subscriber
from publisher.store import Store
from publisher.text import single_line

DIGEST = "digest"  # the newsletter of a site without [[newsletters]]


def normalise(address: str) -> str:
    """The canonical form of an address (``addresses.mailbox_key``), or UsageError
    naming it and the problem."""
    try:
        return mailbox_key(address)
    except InvalidAddress as exc:
        raise UsageError(f"{address!r} is not a valid email address: {exc}") from None


def choices(
    config: Config | None, keys: Sequence[str] | None = None, sections: Sequence[str] | None = None
) -> dict[str, list[str]]:
    """Newsletter key -> chosen section slugs ([] = all it carries), checked against the
    configuration. ``keys`` None: the newsletters offered at sign-up (``signup = true``;
    without ``config``: ``digest``). ``sections`` narrow each chosen newsletter that lets
    readers choose (``reader_sections``); the others come whole, and naming sections when
    none of them lets readers choose is an error."""
    if config is None:
        known: dict[str, Newsletter] = {DIGEST: Newsletter(key=DIGEST, title=DIGEST)}
    else:
        known = {n.key: n for n in config.newsletters}
    if keys is None:
        keys = [k for k, n in known.items() if n.signup]
    chosen: dict[str, Newsletter] = {}
    for key in keys:
        if key not in known:
            raise UsageError(f"no newsletter {key!r} (known: {', '.join(known) or 'none'})")
        chosen[key] = known[key]
    narrowed = [n for n in chosen.values() if n.reader_sections]
    if sections and any(s.strip() for s in sections) and not narrowed:
        names = ", ".join(chosen) or "none"
        raise UsageError(f"sections given, but no chosen newsletter offers a choice of sections ({names})")
    return {k: narrowing(n, sections or ()) if n.reader_sections else [] for k, n in chosen.items()}


def narrowing(newsletter: Newsletter, sections: Sequence[str]) -> list[str]:
    """The section slugs a reader chose for ``newsletter`` ([] = all), or UsageError."""
    slugs: list[str] = []
    for name in sections:
        clean = single_line(name)
        if clean and category_slug(clean) not in slugs:
            slugs.append(category_slug(clean))
    if not slugs:
        return []
    if not newsletter.reader_sections:
        raise UsageError(
            f"newsletter {newsletter.key!r} offers no choice of sections (reader_sections = false)"
        )
    if newsletter.sections:
        unknown = [s for s in slugs if s not in newsletter.sections]
        if unknown:
            raise UsageError(
                f"newsletter {newsletter.key!r} has no section {unknown[0]!r} "
                f"(its sections: {', '.join(newsletter.sections)})"
            )
        if set(slugs) == set(newsletter.sections):
            return []
    return slugs


class Added(StrEnum):
    """What an operator's add did to an address."""

    ADDED = "added"  # a new address
    ALREADY = "already"  # it had everything asked for
    REACTIVATED = "reactivated"  # an unsubscribed or bounced address, with resubscribe
    SUBSCRIBED = "subscribed"  # an active address got a newsletter it did not have


def add(
    store: Store,
    address: str,
    name: str = "",
    *,
    config: Config | None = None,
    newsletters: Sequence[str] | None = None,
    sections: Sequence[str] | None = None,
    resubscribe: bool = False,
) -> tuple[Subscriber, Added]:
    """Add an active subscriber (an operator's add: consent was given elsewhere) with
    active subscriptions to ``newsletters`` (see ``choices``); return it and what
    happened. An unsubscribed or bounced address, or a newsletter the
    address left, needs ``resubscribe``."""
    email = normalise(address)
    name = single_line(name)
    wanted = choices(config, newsletters, sections)
    now = datetime.now(UTC)
    existing = store.subscribers.get(email)
    if existing is None:
        sub = store.subscribers.add(email, name, "active", now)
        store.subscriptions.request(sub.id, wanted, now, status="active")
        return sub, Added.ADDED
    if existing.status in ("unsubscribed", "bounced") and not resubscribe:
        raise UsageError(
            f"{email} is {existing.status}; add it again only with their consent, using --resubscribe"
        )
    held = store.subscriptions.of(existing.id)
    left = [k for k in wanted if k in held and held[k].status == "unsubscribed"]
    if left and not resubscribe:
        raise UsageError(
            f"{email} unsubscribed from {left[0]}; add it again only with their consent, using --resubscribe"
        )
    if existing.status != "active":
        store.subscribers.set_status(email, "active", now, name=name or existing.name)
    changed = store.subscriptions.request(existing.id, wanted, now, status="active")
    found = store.subscribers.get(email)
    assert found is not None
    if existing.status != "active":
        return found, Added.REACTIVATED
    return found, Added.SUBSCRIBED if changed else Added.ALREADY


def subscribe(
    store: Store,
    config: Config,
    address: str,
    newsletters: Sequence[str] | None = None,
    sections: Sequence[str] | None = None,
    now: datetime | None = None,
) -> tuple[Subscriber, list[str]]:
    """A reader's request to subscribe (the sign-up form): the address (pending if new)
    and a pending subscription to each chosen newsletter it does not already get, to be
    confirmed by the double opt-in mail (``confirm``). Returns the subscriber and the
    keys now awaiting confirmation (none: it already gets them all)."""
    email = normalise(address)
    wanted = choices(config, newsletters, sections)
    now = now or datetime.now(UTC)
    sub, _ = store.subscribers.get_or_add(email, "", "pending", now)
    store.subscriptions.request(sub.id, wanted, now, status="pending")
    held = store.subscriptions.of(sub.id)
    waiting = [k for k in wanted if held[k].status == "pending"]
    return sub, waiting


def confirm(store: Store, subscriber: Subscriber, now: datetime | None = None) -> None:
    """The double opt-in mail's link was followed: the address is active and its pending
    subscriptions are too (active ones untouched)."""
    store.subscriptions.confirm(subscriber.id, now or datetime.now(UTC))


def set_preferences(
    store: Store, config: Config, subscriber: Subscriber, chosen: Mapping[str, Sequence[str]]
) -> list[str]:
    """Save the preference centre's form: the newsletters in ``chosen`` (key -> section
    names or slugs; empty: all) are active with those sections, every other configured
    newsletter is left. Needs no confirmation: the signed link proves the address.
    Returns the keys that changed."""
    known = {n.key: n for n in config.newsletters}
    wanted: dict[str, Sequence[str] | None] = {key: None for key in known}
    for key, sections in chosen.items():
        if key not in known:
            raise UsageError(f"no newsletter {key!r} (known: {', '.join(known)})")
        wanted[key] = narrowing(known[key], sections)
    return store.subscriptions.set_preferences(subscriber.id, wanted, datetime.now(UTC))


def unsubscribe(store: Store, subscriber: Subscriber, newsletter: str) -> bool:
    """Leave one newsletter (one-click unsubscribe); True when it was live."""
    return store.subscriptions.unsubscribe(subscriber.id, newsletter, datetime.now(UTC))


def unsubscribe_all(store: Store, subscriber: Subscriber) -> int:
    """Leave every newsletter and unsubscribe the address (the preference centre's
    "unsubscribe from everything", a complaint)."""
    return store.subscriptions.unsubscribe_all(subscriber.id, datetime.now(UTC))


def remove(store: Store, address: str) -> Subscriber:
    email = normalise(address)
    existing = store.subscribers.get(email)
    if existing is None:
        raise UsageError(f"{email} is not a subscriber")
    store.subscribers.set_status(email, "unsubscribed", datetime.now(UTC))  # ends its subscriptions
    found = store.subscribers.get(email)
    assert found is not None
    return found


@dataclass
class ImportReport(Rejections):
    added: int = 0
    already: int = 0
    reactivated: int = 0
    subscribed: int = 0  # known addresses that got a newsletter they did not have

    def count(self, outcome: Added) -> None:
        if outcome is Added.ADDED:
            self.added += 1
        elif outcome is Added.REACTIVATED:
            self.reactivated += 1
        elif outcome is Added.SUBSCRIBED:
            self.subscribed += 1
        else:
            self.already += 1


@dataclass
class _Row:
    line: int
    email: str
    name: str
    wanted: dict[str, list[str]]


def import_csv(
    store: Store,
    text: str | Iterable[str],
    filename: str,
    *,
    config: Config | None = None,
    resubscribe: bool = False,
    on_problem: Callable[[str], None] | None = None,
    batch: int = BATCH,
) -> ImportReport:
    """Import rows with an ``email`` column (and optionally ``name``, and ``newsletters``:
    keys separated by spaces; empty or absent: those offered at sign-up) from ``text``
    (the file's text, or its lines: an open file is read as it goes). Bad rows are
    reported by line number and skipped, good ones are still imported.

    The file is read, checked and stored ``batch`` rows at a time, in order
    (``publisher.csvrows``): new addresses of a batch go in together, known ones (found
    in the store, which includes the rows of earlier batches: an address repeated in the
    file) one by one. Each problem goes to ``on_problem`` as soon as its batch is
    stored, in line order."""
    report = ImportReport()
    rows = Rows(text, filename)
    rows.column("email")
    default = choices(config)

    def check(row: dict[str, str]) -> tuple[str, str, dict[str, list[str]]]:
        keys = row.get("newsletters", "").split()
        return (
            normalise(row["email"]),
            single_line(row.get("name", "")),
            choices(config, keys) if keys else default,
        )

    now = datetime.now(UTC)
    for group in rows.batches(check, batch):
        checked = [_Row(line, *row) for line, row in group.rows]
        _store_batch(store, filename, checked, group.problems, report, config, resubscribe, now)
        report.reject(group.problems, on_problem)
    return report


def _store_batch(
    store: Store,
    filename: str,
    rows: list[_Row],
    problems: list[tuple[int, str]],
    report: ImportReport,
    config: Config | None,
    resubscribe: bool,
    now: datetime,
) -> None:
    """Store one batch of checked rows (the first of an address repeated within the
    batch wins: the others count as already subscribed); problems of known addresses
    join ``problems``."""
    first: dict[str, _Row] = {}
    for row in rows:
        if row.email in first:
            report.already += 1
        else:
            first[row.email] = row
    known = store.subscribers.statuses(first)
    fresh = [row for email, row in first.items() if email not in known]
    report.added += store.subscribers.add_many([(r.email, r.name) for r in fresh], "active", now)
    ids = store.subscribers.ids(r.email for r in fresh)
    store.subscriptions.add_many({ids[r.email]: r.wanted for r in fresh if r.email in ids}, "active", now)
    for email in known:
        row = first[email]
        try:
            _, outcome = add(
                store, email, row.name, config=config, newsletters=list(row.wanted), resubscribe=resubscribe
            )
        except UsageError as exc:
            problems.append((row.line, f"{filename}:{row.line}: {exc}"))
            continue
        report.count(outcome)


def export_csv(store: Store, batch: int = 1000) -> Iterable[str]:
    """Every subscriber as CSV lines (``import_csv`` reads them back): email, name,
    status, created and ``newsletters``, the keys it gets or awaits, space-separated."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["email", "name", "status", "created", "newsletters"])
    for group in store.subscribers.batches(batch):
        keys = store.subscriptions.keys_of(s.id for s in group)
        for s in group:
            created = s.created.isoformat() if s.created else ""
            writer.writerow([s.email, s.name, s.status, created, " ".join(keys.get(s.id, []))])
        yield out.getvalue()
        out.seek(0)
        out.truncate()
    if out.tell():
        yield out.getvalue()
