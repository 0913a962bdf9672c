"""The domain's plain data: frozen dataclasses with derived properties, no I/O."""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


@dataclass(frozen=True)
class Author:
    name: str
    email: str | None = None


@dataclass(frozen=True)
class Article:
    """One article as a source describes it, before the store gives it a slug.

    ``id`` is stable for the life of the article: the file path relative to the
    source root, or the upstream entry id, prefixed with the source name.
    ``published`` may be ``None`` when the source gave no usable date; collect then
    uses the time it first saw the article.
    """

    id: str
    source: str
    title: str
    body: str  # sanitised HTML
    published: datetime | None = None
    updated: datetime | None = None
    authors: tuple[Author, ...] = ()
    summary: str = ""
    categories: tuple[str, ...] = ()
    image: str | None = None
    credits: tuple[str, ...] = ()
    url: str | None = None  # the article's own canonical URL, when the source has one

    @functools.cached_property
    def content_hash(self) -> str:
        """A hash of everything a reader sees: equal hashes mean nothing changed."""
        payload = json.dumps(
            [
                self.title,
                self.body,
                self.published.isoformat() if self.published else None,
                self.updated.isoformat() if self.updated else None,
                [(a.name, a.email) for a in self.authors],
                self.summary,
                list(self.categories),
                self.image,
                list(self.credits),
                self.url,
            ],
            ensure_ascii=False,
        )
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class StoredArticle:
    """An article as the store keeps it: the source's fields plus what publishing adds."""

    article: Article
    slug: str
    published: datetime  # always set: the source's date or the first-collected time
    updated: datetime  # last content change (equals published until one happens)
    first_seen: datetime
    withdrawn: bool = False
    content_hash: str = ""  # the hash of the source's version, as collect stored it
    feed_id: str | None = None  # minted once when first collected; None: not yet minted

    # The source's fields, read through: templates and stages see one flat object
    # (``a.summary``, not ``a.article.summary``); ``published``/``updated`` are the
    # store's (always set), not the source's.

    @property
    def id(self) -> str:
        return self.article.id

    @property
    def source(self) -> str:
        return self.article.source

    @property
    def title(self) -> str:
        return self.article.title

    @property
    def body(self) -> str:
        return self.article.body

    @property
    def authors(self) -> tuple[Author, ...]:
        return self.article.authors

    @property
    def summary(self) -> str:
        return self.article.summary

    @property
    def categories(self) -> tuple[str, ...]:
        return self.article.categories

    @property
    def image(self) -> str | None:
        return self.article.image

    @property
    def credits(self) -> tuple[str, ...]:
        return self.article.credits

    @property
    def url(self) -> str | None:
        """The article's own canonical URL as the source gave it (unchecked: see Links)."""
        return self.article.url


@dataclass(frozen=True)
class Subscriber:
    id: int
    public_id: str  # opaque, random; what tokens sign (never the address)
    email: str
    name: str = ""
    status: str = "active"  # pending | active | unsubscribed | bounced
    created: datetime | None = None
    changed: datetime | None = None  # last status change


@dataclass(frozen=True)
class Suppression:
    """An address (or ``@domain``) that is never sent anything: why, since when, and
    until when (a suspension for soft bounces; None: until removed)."""

    entry: str
    reason: str  # complaint | hard_bounce | soft_bounce | manual
    detail: str
    created: datetime
    expires: datetime | None = None


@dataclass(frozen=True)
class Outcome:
    """What happened to one delivery: ``status`` is sent, failed, skipped or queued
    (a temporary failure, left for a retry); ``bounce`` says how a failure counts
    against the address: "now" (no such user), "count" (other hard failure) or "";
    ``reply_code`` and ``reply_status``: the server's last reply to it, when it gave one
    (kept in the ledger for ``publish deliverability``)."""

    subscriber_id: int
    status: str
    error: str | None = None
    bounce: str = ""
    reply_code: int | None = None
    reply_status: str = ""


class Change(StrEnum):
    """What saving an article did to the store."""

    NEW = "new"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class Saving:
    """One article to save, with the file state that lets the next run skip it."""

    article: Article
    file_size: int | None = None
    file_mtime_ns: int | None = None
    order: int = 0  # among this run's dateless articles: 0 for the first its sources listed


DIGEST = "digest"  # the key of the one newsletter of a site without [[newsletters]]


@dataclass(frozen=True)
class DigestRecord:
    """An issue of a newsletter (the ``digests`` table): ``key`` is YYYY-MM-DD[-N]."""

    id: int
    key: str
    created: datetime
    subject: str
    status: str  # held | sending | done | skipped
    html: str
    text: str
    newsletter: str = DIGEST

    @property
    def issue_key(self) -> str:
        """``<newsletter>/<YYYY-MM-DD>[-N]``: how people name an issue."""
        return f"{self.newsletter}/{self.key}"


@dataclass(frozen=True)
class DigestItem:
    """One article a digest carried: ``shown`` in it, or counted among "more on the site"."""

    article_id: str
    content_hash: str
    shown: bool


@dataclass(frozen=True)
class OutboxMail:
    """A confirmation mail promised to a subscriber, as the outbox keeps it."""

    id: int
    kind: str  # confirm | already
    token: str
    created: datetime
    attempts: int  # tries before this one
    in_doubt: bool  # a try was interrupted: the mail may already have gone out
    subscriber: Subscriber

    @property
    def key(self) -> str:
        """The mail's stable identity, the same on every try (Maildir-style: the time
        it was promised first, so files sort in the order the mails were asked for)."""
        return f"{int(self.created.timestamp())}.M{self.created.microsecond:06d}Q{self.id}-{self.token}"


@dataclass(frozen=True)
class JobRun:
    """The last run of a scheduled job."""

    job: str
    started: datetime
    duration: float  # seconds
    outcome: str  # ok | failed | missed | interrupted
    detail: str


@dataclass(frozen=True)
class SourceStatus:
    """What a source remembers between runs and how its last read went."""

    source: str
    state: dict[str, str] = field(default_factory=dict)
    checked: datetime | None = None
    ok: bool = True
    error: str | None = None
    succeeded: datetime | None = None  # the last good read; unchanged by failures


# -- feedback after sending (the rules applied by publisher.feedback / store.feedback) --

KINDS = ("hard_bounce", "soft_bounce", "complaint", "policy", "delayed", "delivered")
SUPPRESSES = ("complaint", "hard_bounce")  # at once, and every subscription ends
COUNTS = ("soft_bounce",)  # towards a suspension


def event_key(*parts: object) -> str:
    """A stable key from the parts that identify one report (e.g. the report's
    Message-ID and the recipient): SHA-256, hex."""
    joined = "\x00".join(str(p) for p in parts)
    return hashlib.sha256(joined.encode("utf-8", "surrogateescape")).hexdigest()


@dataclass(frozen=True)
class Event:
    """One report about one delivery or recipient.

    ``key`` identifies the report (``event_key``): the same report read twice has the
    same key and counts once. The delivery it names, if known: ``issue_id`` and
    ``subscriber_id`` (from the VERP return path, or an ESP's metadata); else only
    ``address``. ``status`` is RFC 3463's ``5.1.1`` where the report gave one,
    ``diagnostic`` the remote server's words. ``source`` says what brought it:
    ``dsn``, ``arf``, ``bounce`` (a non-standard bounce), ``verp`` (only the return
    path was readable) or ``webhook:<esp>``."""

    kind: str
    key: str
    source: str
    at: datetime
    address: str = ""
    issue_id: int | None = None
    subscriber_id: int | None = None
    status: str = ""
    diagnostic: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown feedback kind {self.kind!r} (known: {', '.join(KINDS)})")
        if not self.key:
            raise ValueError("a feedback event needs a key")
        if not self.address and self.subscriber_id is None:
            raise ValueError("a feedback event names an address or a subscriber")
        if self.at.tzinfo is None:
            raise ValueError("a feedback event's time must be aware")


@dataclass
class Recorded:
    """What ``record`` did: events new and already known, and the addresses it
    suppressed (a complaint or a hard bounce) or suspended (soft bounces)."""

    new: int = 0
    duplicates: int = 0
    suppressed: list[str] = field(default_factory=list)
    suspended: list[str] = field(default_factory=list)
    unknown: int = 0  # events naming a subscriber the store does not have

    def add(self, other: Recorded) -> None:
        self.new += other.new
        self.duplicates += other.duplicates
        self.suppressed += other.suppressed
        self.suspended += other.suspended
        self.unknown += other.unknown
