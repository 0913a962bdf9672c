"""The issues of a site's newsletters: the next issue of each, the renditions its
readers' choices need, and held issues (approve, skip, test copies).

``prepare`` makes the next issue of each newsletter that has something new for it:
its articles (``digest.select`` over what no earlier issue of that newsletter
carried), the issue rendered once, then once per distinct choice of sections among
its readers (``digest.narrow``), never per reader. Everything is rendered before
anything is recorded; the issue, its articles, its renditions and a queued delivery
per reader (pointing to their rendition) are then recorded in one transaction
(``Ledger.create_issue``): the ledger is what makes sending exactly once. A reader
whose sections have nothing new gets no delivery.

With ``approval = true`` the issue is recorded held, without deliveries: the editors
get a marked test copy; ``approve`` queues it (the readers' choices as they are
then), ``skip`` discards it and its articles wait for the next issue. A newsletter
with a held issue gets no new one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from email.utils import parseaddr
from pathlib import Path

import jinja2

from publisher import digest as digests
from publisher import site
from publisher.addresses import mailbox_key
from publisher.checks import Check, check_message
from publisher.config import Config, Newsletter
from publisher.delivery import open_transport
from publisher.errors import DeliveryError, InvalidAddress, PublisherError, UsageError
from publisher.i18n import for_config
from publisher.links import Links
from publisher.messages import Messages
from publisher.models import DigestItem, DigestRecord, StoredArticle, Subscriber
from publisher.output import write_atomic
from publisher.store import Store
from publisher.store.ledger import Fence, Part

log = logging.getLogger(__name__)

PREVIEW_READER = Subscriber(0, "preview", "reader@example.com", "A Reader")
WHOLE = frozenset[str]()  # the choice "everything the newsletter carries"


@dataclass
class IssueReport:
    newsletter: str
    key: str  # <newsletter>/<YYYY-MM-DD>[-N]
    articles: int  # new articles shown
    renditions: int  # renderings made: the issue and each distinct choice of sections
    state: str  # sending | held | preview


@dataclass
class Prepared:
    """What ``prepare`` did, for the run's report."""

    issues: list[IssueReport] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # newsletters that made no issue, and why
    checks: list[Check] = field(default_factory=list)


def chosen(config: Config, keys: Sequence[str] = ()) -> list[Newsletter]:
    """The newsletters named (all when none), or UsageError naming an unknown key."""
    if not keys:
        return list(config.newsletters)
    known = {n.key: n for n in config.newsletters}
    unknown = [k for k in keys if k not in known]
    if unknown:
        raise UsageError(
            f"no newsletter {unknown[0]!r} in {config.path} (known: {', '.join(known) or 'none'})"
        )
    return [known[k] for k in dict.fromkeys(keys)]


def prepare(
    config: Config,
    store: Store,
    now: datetime,
    newsletters: Sequence[Newsletter],
    *,
    preview: str | None = None,
    dry_run: bool = False,
    automatic: bool = False,
    fence: Fence | None = None,
) -> Prepared:
    """The next issue of each of ``newsletters`` with something new for it.
    ``automatic`` (the scheduler): a newsletter's ``min_interval`` is kept. ``fence``
    (the site lock's) is checked in each issue's own transaction (``Ledger.create_issue``)."""
    done = Prepared()
    messages = Messages.for_site(config, store)
    for newsletter in newsletters:
        held = store.ledger.held(newsletter.key)
        if held is not None:
            done.waiting.append(
                f"{newsletter.key}: issue {held.issue_key} is held for approval;"
                " no new issue until it is approved or skipped"
            )
            continue
        if automatic and newsletter.min_interval:
            last = store.ledger.last_created(newsletter.key)
            if last is not None and now - last < timedelta(minutes=newsletter.min_interval):
                done.waiting.append(
                    f"{newsletter.key}: the last issue went out less than {newsletter.min_interval} min ago"
                )
                continue
        issue = _one(
            config, store, messages, now, newsletter, preview=preview, dry_run=dry_run, done=done, fence=fence
        )
        if issue is not None:
            done.issues.append(issue)
            if preview:
                break  # one preview file: the first newsletter with something new
    return done


def _one(
    config: Config,
    store: Store,
    messages: Messages,
    now: datetime,
    newsletter: Newsletter,
    *,
    preview: str | None,
    dry_run: bool,
    done: Prepared,
    fence: Fence | None,
) -> IssueReport | None:
    carried = digests.slugs(newsletter.sections)
    fresh = [a for a in store.articles.not_yet_in_digest(now, newsletter.key) if digests.carries(a, carried)]
    corrected = [
        a for a in store.articles.corrected_since_digest(now, newsletter.key) if digests.carries(a, carried)
    ]
    selection = digests.select(fresh, newsletter.max_articles, corrected)
    if selection.empty and config.digest.skip_if_empty:
        return None
    day = now.astimezone(config.tz).strftime("%Y-%m-%d")
    key = store.ledger.next_key(newsletter.key, day)
    record = DigestRecord(0, key, now, "", "draft", "", "", newsletter.key)
    # Rendered and built before anything is recorded: an issue whose messages cannot
    # be built fails the run here and leaves no issue stuck in "sending".
    selection, whole = _render(config, selection, key, now, newsletter)  # what fits under the clip
    record = replace(record, subject=whole.subject, html=whole.html, text=whole.text)
    sample = messages.digest(record, newsletter.key, newsletter.title)(PREVIEW_READER)
    held = newsletter.approval and not (preview or dry_run)
    parts, groups = ([], []) if held else _renditions(config, store, now, newsletter, selection, record)
    report = IssueReport(newsletter.key, record.issue_key, len(selection.shown), 1 + len(parts), "sending")
    if preview or dry_run:
        links = Links(config.site.base_url)
        if preview:
            write_atomic(Path(preview), site.archived(whole.html, links).encode("utf-8"))
        articles = selection.shown + selection.updated
        done.checks += check_message(
            sample, [a.title for a in articles], [links.article(a) for a in articles]
        )
        report.state = "preview"
        return report
    items = [DigestItem(a.id, a.content_hash, True) for a in selection.shown + selection.updated]
    items += [DigestItem(a.id, a.content_hash, False) for a in selection.hidden]
    stored = store.ledger.create_issue(record, items, parts, groups, held=held, fence=fence)
    if held:
        report.state = "held"
        _send_held_copies(config, messages, stored, newsletter, newsletter.editors)
    return report


def _render(
    config: Config, selection: digests.Selection, key: str, now: datetime, newsletter: Newsletter
) -> tuple[digests.Selection, digests.RenderedDigest]:
    try:
        return digests.compose(config, selection, key, now, newsletter=newsletter)
    except jinja2.TemplateError as exc:
        raise PublisherError(
            f"cannot render the issue {newsletter.key}/{key}: {_template_error(exc)}"
        ) from None


def _template_error(exc: jinja2.TemplateError) -> str:
    """Where a template failed, for one line: ``digest.txt line 3: 'x' is undefined``."""
    import traceback

    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if not frame.filename.endswith(".py"):
            return f"{frame.filename} line {frame.lineno}: {exc.message}"
    return str(exc.message)


def _renditions(
    config: Config,
    store: Store,
    now: datetime,
    newsletter: Newsletter,
    selection: digests.Selection,
    record: DigestRecord,
) -> tuple[list[Part], list[tuple[list[str] | None, int | None]]]:
    """The renditions the readers' choices need (one per distinct choice) and which
    readers get which: ``groups`` pairs stored ``sections`` values (None: every
    reader) with an index into the renditions (None: the whole issue); a choice with
    nothing new for it is in no group (no delivery)."""
    if not newsletter.reader_sections:
        return [], [(None, None)]
    carried = digests.slugs(newsletter.sections)
    by_choice: dict[frozenset[str], list[str]] = {}
    for raw in store.ledger.choices(newsletter.key):
        by_choice.setdefault(_choice(raw, carried), []).append(raw)
    parts: list[Part] = []
    groups: list[tuple[list[str] | None, int | None]] = []
    for choice, raws in by_choice.items():
        if choice == WHOLE:
            groups.append((raws, None))
            continue
        narrowed = digests.narrow(selection, choice, newsletter.max_articles)
        if narrowed.empty:
            continue  # nothing new in their sections: no mail for them
        _, rendered = _render(config, narrowed, record.key, now, newsletter)
        groups.append((raws, len(parts)))
        parts.append(Part(None, json.dumps(sorted(choice)), rendered.subject, rendered.html, rendered.text))
    return parts, groups


def _choice(raw: str, carried: frozenset[str]) -> frozenset[str]:
    """A reader's stored sections (a JSON list) as the slugs that narrow the issue:
    WHOLE for none, all of them, or only sections the newsletter no longer carries."""
    try:
        names = json.loads(raw)
    except ValueError:
        return WHOLE
    if not isinstance(names, list):
        return WHOLE
    chosen_ = digests.slugs([n for n in names if isinstance(n, str)])
    if carried:
        chosen_ &= carried
        if chosen_ == carried:
            return WHOLE
    return chosen_


# -- held issues ------------------------------------------------------------------------


def find(config: Config, store: Store, issue_key: str) -> tuple[DigestRecord, Newsletter]:
    """The issue ``<newsletter>/<YYYY-MM-DD>[-N]`` and its newsletter, or UsageError."""
    newsletter_key, _, key = issue_key.partition("/")
    record = store.ledger.issue(newsletter_key, key) if key else None
    if record is None:
        raise UsageError(f"no issue {issue_key!r} (see publish issues list)")
    known = {n.key: n for n in config.newsletters}
    if newsletter_key not in known:
        raise UsageError(f"issue {issue_key}: newsletter {newsletter_key!r} is not in {config.path}")
    return record, known[newsletter_key]


def approve(
    config: Config, store: Store, issue_key: str, now: datetime, fence: Fence | None = None
) -> DigestRecord:
    """Queue a held issue for its readers (their choices as they are now)."""
    record, newsletter = find(config, store, issue_key)
    if record.status != "held":
        raise UsageError(f"issue {issue_key} is {record.status}, not held: nothing to approve")
    selection = _selection_of(store, record, now)
    parts, groups = _renditions(config, store, now, newsletter, selection, record)
    if not store.ledger.release(record.id, parts, groups, now, fence):
        raise UsageError(f"issue {issue_key} is no longer held")
    return record


def skip(config: Config, store: Store, issue_key: str, fence: Fence | None = None) -> DigestRecord:
    """Discard a held issue: nothing is sent, its articles wait for the next issue."""
    record, _ = find(config, store, issue_key)
    if record.status != "held" or not store.ledger.discard(record.id, fence):
        raise UsageError(f"issue {issue_key} is {record.status}, not held: nothing to skip")
    return record


def send_test(config: Config, store: Store, issue_key: str, to: str) -> None:
    """A marked test copy of an issue to one address."""
    try:
        address = mailbox_key(to)
    except InvalidAddress as exc:
        raise UsageError(f"{to!r} is not a valid email address: {exc}") from None
    record, newsletter = find(config, store, issue_key)
    failed = _send_held_copies(config, Messages.for_site(config, store), record, newsletter, [address])
    if failed:
        raise PublisherError(failed[0])


def _send_held_copies(
    config: Config, messages: Messages, record: DigestRecord, newsletter: Newsletter, to: Sequence[str]
) -> list[str]:
    """Each address gets the issue marked as held; returns what failed (logged: the
    issue stays held, ``publish issues test`` sends another copy)."""
    if not to:
        return []
    subject, html, text = digests.held_copy(record.subject, record.html, record.text, for_config(config))
    failed = []
    transport = open_transport(config.delivery)
    try:
        for address in to:
            reader = Subscriber(0, "editor", address)
            message = messages.held_copy(record, reader, subject=subject, html=html, text=text)
            try:
                transport.send(parseaddr(config.digest.from_)[1], address, message)
            except DeliveryError as exc:
                failed.append(f"the test copy of {record.issue_key} to {address} failed: {exc}")
                log.warning("%s", failed[-1])
    finally:
        transport.close()
    return failed


def _selection_of(store: Store, record: DigestRecord, now: datetime) -> digests.Selection:
    """A recorded issue's selection again: shown, counted and corrected articles."""
    shown, hidden, corrected = store.ledger.items(record.id)
    by_id: dict[str, StoredArticle] = {a.id: a for a in store.articles.by_ids([*shown, *hidden])}
    pick = lambda ids: [by_id[i] for i in ids if i in by_id]  # noqa: E731
    return digests.Selection(
        pick([i for i in shown if i not in corrected]),
        pick(hidden),
        pick([i for i in shown if i in corrected]),
    )
