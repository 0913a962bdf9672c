"""The store's tables, as the newest revision in ``migrations/versions`` leaves them.

A change here goes with a new revision there (``publisher.store.migrations``), which brings
stores written by earlier releases to the same schema.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes stored as UTC ISO 8601 text: sortable, the same on every backend."""

    impl = String(32)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> str | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} cannot be stored")
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def process_result_value(self, value: str | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if len(value) == 27 and value[-1] == "Z":  # what bind wrote: fromisoformat is 30x strptime
            return datetime.fromisoformat(value[:-1]).replace(tzinfo=UTC)
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


metadata = MetaData()

meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

articles = Table(
    "articles",
    metadata,
    # Stable: source name + path or entry id. Names, paths and entry ids have no length
    # limit, so neither do these columns (SQLite never enforced one; a server does).
    Column("id", Text, primary_key=True),
    Column("source", Text, nullable=False),
    Column("slug", String(200), nullable=False, unique=True),
    Column("title", Text, nullable=False),
    Column("url", Text),  # the article's own canonical URL, if the source gave one
    Column("published", UTCDateTime, nullable=False),
    Column("updated", UTCDateTime, nullable=False),
    Column("first_seen", UTCDateTime, nullable=False),
    Column("date_missing", Boolean, nullable=False, default=False),
    Column("authors", Text, nullable=False, default="[]"),  # JSON [[name, email], ...]
    Column("summary", Text, nullable=False, default=""),
    Column("body", Text, nullable=False),
    Column("categories", Text, nullable=False, default="[]"),  # JSON [name, ...]
    Column("image", Text),
    Column("credits", Text, nullable=False, default="[]"),  # JSON [line, ...]
    Column("content_hash", String(64), nullable=False),
    # Directory sources: skip unchanged files cheaply. 64-bit: nanoseconds since 1970
    # overflow a 32-bit INTEGER on servers that have one (SQLite's is 64-bit anyway).
    Column("file_size", BigInteger),
    Column("file_mtime_ns", BigInteger),
    Column("withdrawn", UTCDateTime),  # set when the source no longer has it
    # The id every feed gives the article (a urn:uuid), minted once when it is first
    # collected and kept: a later change of site.base_url must not make every reader
    # see every item as new. NULL only in a store migrated from version 2 or older until the
    # next collect mints it (from the base_url then, which is what feeds said so far).
    Column("feed_id", Text),
)
Index("ix_articles_published", articles.c.published)
# Only the rows still without a feed id (a migrated store): finding them costs nothing
# on the collects after that.
ix_articles_no_feed_id = Index(
    "ix_articles_no_feed_id",
    articles.c.id,
    sqlite_where=articles.c.feed_id.is_(None),
    postgresql_where=articles.c.feed_id.is_(None),
)
# Covers Articles.file_states: a second collect reads only this index, not the bodies.
Index(
    "ix_articles_source_files",
    articles.c.source,
    articles.c.id,
    articles.c.file_size,
    articles.c.file_mtime_ns,
    articles.c.withdrawn,
)

subscribers = Table(
    "subscribers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("public_id", String(32), nullable=False, unique=True),
    Column("email", String(320), nullable=False, unique=True),  # normalised, lower-case domain
    Column("name", Text, nullable=False, default=""),
    Column("status", String(16), nullable=False),  # pending|active|unsubscribed|bounced
    Column("created", UTCDateTime, nullable=False),
    Column("changed", UTCDateTime, nullable=False),
    Column("hard_failures", Integer, nullable=False, default=0),
)

subscribe_requests = Table(
    "subscribe_requests",
    metadata,
    # One row per confirmation mail allowed by POST /subscribe (the per-address limit).
    # ``target`` is a keyed hash of the address, so addresses that never confirmed are
    # not kept in clear; rows older than the window are deleted as new ones arrive.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("target", String(64), nullable=False),
    Column("at", UTCDateTime, nullable=False),
)
Index("ix_subscribe_requests_target", subscribe_requests.c.target, subscribe_requests.c.at)

subscriptions = Table(
    "subscriptions",
    metadata,
    # One row per (subscriber, newsletter key): what a reader gets. A newsletter's key is
    # config (``[[newsletters]]``), not a row: a key no longer configured keeps its rows.
    Column("subscriber_id", Integer, ForeignKey("subscribers.id"), primary_key=True),
    Column("newsletter", String(64), primary_key=True),
    Column("status", String(16), nullable=False),  # pending | active | unsubscribed
    # The reader's narrowing, a JSON list of section slugs; [] = all the newsletter carries.
    Column("sections", Text, nullable=False, default="[]"),
    Column("created", UTCDateTime, nullable=False),
    Column("changed", UTCDateTime, nullable=False),
)
# Covers the audience of a newsletter, read in subscriber order in batches.
Index(
    "ix_subscriptions_newsletter",
    subscriptions.c.newsletter,
    subscriptions.c.status,
    subscriptions.c.subscriber_id,
)

digests = Table(  # the issues of every newsletter (the table kept its first name)
    "digests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # YYYY-MM-DD[-N], unique per newsletter; the issue key is "<newsletter>/<key>".
    Column("key", String(32), nullable=False),
    Column("newsletter", String(64), nullable=False, server_default="digest"),
    Column("created", UTCDateTime, nullable=False),
    Column("subject", Text, nullable=False),
    Column("status", String(16), nullable=False),  # held | sending | done | skipped
    Column("html", Text, nullable=False),  # inlined, with personal placeholders
    Column("text", Text, nullable=False),
    UniqueConstraint("newsletter", "key", name="uq_digests_newsletter_key"),
)

digest_articles = Table(
    "digest_articles",
    metadata,
    Column("digest_id", Integer, ForeignKey("digests.id"), primary_key=True),
    Column("article_id", Text, ForeignKey("articles.id"), primary_key=True),
    Column("content_hash", String(64), nullable=False),  # the version that went out
    Column("shown", Boolean, nullable=False),  # false: past max_articles, counted only
)
Index("ix_digest_articles_article", digest_articles.c.article_id)

deliveries = Table(
    "deliveries",
    metadata,
    Column("digest_id", Integer, ForeignKey("digests.id"), primary_key=True),
    Column("subscriber_id", Integer, ForeignKey("subscribers.id"), primary_key=True),
    Column("status", String(16), nullable=False),  # queued | sent | failed | skipped
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("changed", UTCDateTime, nullable=False),
    # The server's last reply to this delivery (publish deliverability): the basic code
    # (250, 451, 550 ...) and the RFC 3463 status when it gave one ("5.7.1"); NULL: no
    # SMTP reply yet (not tried, or a transport without one such as maildir).
    Column("reply_code", Integer),
    Column("reply_status", String(16)),
    # What this reader gets: a rendition of the issue for their sections; NULL: the whole issue.
    Column("rendition_id", Integer, ForeignKey("renditions.id")),
    # The sender's claim on this queued delivery (``claims.id``, ``publisher.store.claims``);
    # NULL: unclaimed. No foreign key: a released or reaped claim's row is deleted, and a
    # delivery sent under it keeps its number.
    Column("claim_id", Integer),
)
# The queue: an issue's queued deliveries of one rendition, unclaimed, in subscriber
# order (a claim's search), and one claim's rows (its commits and release).
Index(
    "ix_deliveries_queue",
    deliveries.c.digest_id,
    deliveries.c.status,
    deliveries.c.rendition_id,
    deliveries.c.claim_id,
    deliveries.c.subscriber_id,
)
# What is still to send, written as a literal (not a bound parameter): a statement
# compiled once and prepared by the server (a generic plan), or SQLite's planner, can
# use the partial index below only when its condition is the index's own text.
QUEUED = text("deliveries.status = 'queued'")
# Two partial indexes hold only what is left to send (their size is that, not the
# issue's), each read in order with no sort: the claim's search over a whole issue
# (queued and unclaimed, in subscriber order: PostgreSQL orders an index by the columns
# after an equality, not after IS NULL, so "unclaimed" is the index's condition), and
# one claim's queued rows (its commits' re-check).
UNCLAIMED = "status = 'queued' AND claim_id IS NULL"
Index(
    "ix_deliveries_unclaimed",
    deliveries.c.digest_id,
    deliveries.c.subscriber_id,
    postgresql_where=text(UNCLAIMED),
    sqlite_where=text(UNCLAIMED),
)
Index(
    "ix_deliveries_waiting",
    deliveries.c.digest_id,
    deliveries.c.claim_id,
    deliveries.c.subscriber_id,
    postgresql_where=text("status = 'queued'"),
    sqlite_where=text("status = 'queued'"),
)

claims = Table(
    "claims",
    metadata,
    # A sender's hold on batches of an issue's queued deliveries (publisher.store.claims).
    # ``id`` is the fencing token: a commit of outcomes renews the claim and changes only
    # the deliveries still pointing at it. Never reused (AUTOINCREMENT on SQLite).
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("digest_id", Integer, ForeignKey("digests.id"), nullable=False),
    Column("worker", Text, nullable=False),  # who holds it, for status lines (host and pid)
    Column("expires", UTCDateTime, nullable=False),  # by the database's clock (store.clock)
    sqlite_autoincrement=True,
)
Index("ix_claims_digest", claims.c.digest_id)

renditions = Table(
    "renditions",
    metadata,
    # An issue as the readers who chose some of its newsletter's sections get it:
    # rendered once per distinct choice, never per reader.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("digest_id", Integer, ForeignKey("digests.id"), nullable=False),
    Column("sections", Text, nullable=False),  # JSON list of the chosen section slugs, sorted
    Column("subject", Text, nullable=False),
    Column("html", Text, nullable=False),  # inlined, with personal placeholders
    Column("text", Text, nullable=False),
)
Index("ix_renditions_digest", renditions.c.digest_id)

source_state = Table(
    "source_state",
    metadata,
    Column("source", Text, primary_key=True),  # the source's name (no length limit)
    Column("state", Text, nullable=False, default="{}"),  # JSON, e.g. a feed's ETag/Last-Modified
    Column("checked", UTCDateTime, nullable=False),  # the last run that read the source
    Column("succeeded", UTCDateTime),  # the last run that read it without an error
    Column("ok", Boolean, nullable=False),
    Column("error", Text),  # why the last read failed, if it did
)

mail_outbox = Table(
    "mail_outbox",
    metadata,
    # One row per confirmation (or "already subscribed") mail that POST /subscribe
    # promised, committed before the answer; the confirmation sender works through it.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("subscriber_id", Integer, ForeignKey("subscribers.id"), nullable=False),
    Column("kind", String(16), nullable=False),  # confirm | already
    Column("token", String(32), nullable=False),  # random: with id, the mail's stable identity
    Column("created", UTCDateTime, nullable=False),
    Column("due", UTCDateTime, nullable=False),  # not before: the backoff after a failure
    Column("status", String(16), nullable=False),  # queued | sending | sent | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("changed", UTCDateTime, nullable=False),
)
Index("ix_mail_outbox_status", mail_outbox.c.status, mail_outbox.c.due)

locks = Table(  # publisher.locks; the table kept its first name, "leases"
    "leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("owner", String(200), nullable=False),
    Column("expires", UTCDateTime, nullable=False),
)

job_runs = Table(
    "job_runs",
    metadata,
    Column("job", String(64), primary_key=True),  # collect | digest: the last run of each
    Column("started", UTCDateTime, nullable=False),
    Column("duration", Float, nullable=False),  # seconds
    Column("outcome", String(16), nullable=False),  # ok | failed | missed | interrupted
    Column("detail", Text, nullable=False, default=""),
)

feedback_events = Table(
    "feedback_events",
    metadata,
    # One row per bounce, complaint or other report about a delivery (publisher.feedback),
    # whatever brought it: a DSN, an ARF report, an ESP webhook. ``key`` (a SHA-256 of the
    # report's own identity) is unique, so the same report read twice counts once.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(64), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),  # publisher.models.KINDS
    Column("address", String(320), nullable=False),  # the recipient it is about
    Column("issue_id", Integer),  # digests.id, when the report names the delivery
    Column("subscriber_id", Integer),
    Column("status", String(16), nullable=False, default=""),  # RFC 3463, e.g. 5.1.1
    Column("diagnostic", Text, nullable=False, default=""),
    Column("source", String(64), nullable=False),  # dsn | arf | bounce | verp | webhook:<esp>
    Column("at", UTCDateTime, nullable=False),  # when it happened, as the report says
    Column("recorded", UTCDateTime, nullable=False),
)
Index("ix_feedback_events_address", feedback_events.c.address, feedback_events.c.kind, feedback_events.c.at)
Index("ix_feedback_events_issue", feedback_events.c.issue_id)

suppressions = Table(
    "suppressions",
    metadata,
    # Who is never sent anything: an address, or "@domain" for a whole domain (both in
    # the canonical form of publisher.addresses: lower case, punycode domain).
    Column("entry", String(320), primary_key=True),
    Column("reason", String(16), nullable=False),  # complaint | hard_bounce | soft_bounce | manual
    Column("detail", Text, nullable=False, default=""),
    Column("created", UTCDateTime, nullable=False),
    Column("expires", UTCDateTime),  # a suspension (soft bounces) ends then; NULL: until removed
)

webhook_tokens = Table(
    "webhook_tokens",
    metadata,
    # Tokens of signed webhook requests already taken (publisher.store.webhooks): a
    # replayed request carries one of these. ``token`` is "<provider>:<its token>".
    Column("token", String(200), primary_key=True),
    Column("seen", UTCDateTime, nullable=False),
)
Index("ix_webhook_tokens_seen", webhook_tokens.c.seen)

mx_hosts = Table(
    "mx_hosts",
    metadata,
    # Recipient domains' MX hosts, looked up once and kept (publish deliverability groups
    # unknown domains by the mailbox provider their MX belongs to).
    Column("domain", String(253), primary_key=True),
    Column("hosts", Text, nullable=False),  # space-separated, by preference; "" when none
    Column("checked", UTCDateTime, nullable=False),
)
