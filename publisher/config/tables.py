"""The settings tables: each ``[section]`` of config.toml is a frozen dataclass here;
its fields are the keys, their defaults, their types and (in ``help``, with ranges and
checks) what they mean. ``publisher.config.reader`` checks values against them and
``publisher.config.reference()`` turns them into the README's reference."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_CONFIG = "config.toml"


def _h(default: Any, help: str, **kw: Any) -> Any:
    if isinstance(default, list | dict):
        return field(default_factory=lambda: default.copy(), metadata={"help": help, **kw})
    return field(default=default, metadata={"help": help, **kw})


@dataclass(frozen=True)
class SiteConfig:
    title: str = _h("My Newsroom", "Publication name, shown in feeds, pages and the digest.")
    description: str = _h("", "One line about the publication (feed description).")
    base_url: str = _h("http://127.0.0.1:8000/", "Absolute URL where output.dir is served.", check="url")
    language: str = _h(
        "en",
        "Language tag of the content and of every word a reader sees (RSS language, html lang, "
        "dates; catalogs `en` and `ko` ship, a site adds more in `locale/<tag>/LC_MESSAGES/messages.po`).",
        check="language",
    )
    timezone: str = _h("UTC", "IANA zone for dates without an offset and for the schedule.", check="tz")


@dataclass(frozen=True)
class SourceConfig:
    type: str = _h("directory", 'Source kind: "directory" (files) or "feed" (RSS/Atom URL).')
    name: str = _h("", "Name used in article ids and logs; default: the path or URL.")
    path: Path | None = _h(None, "directory: folder holding the article files.", path=True)
    pattern: list[str] = _h(["**/*.txt", "**/*.md"], "directory: glob patterns of files.")
    url: str = _h("", "feed: the RSS/Atom URL to fetch.")
    category: str = _h("", "Category given to every article of this source that has none.")
    max_article_bytes: int = _h(
        2 * 1024 * 1024, "Larger files are skipped with a warning.", minimum=1, maximum=1024**3
    )
    max_feed_bytes: int = _h(
        10 * 1024 * 1024, "feed: a larger download fails the source.", minimum=1, maximum=1024**3
    )
    timeout: float = _h(
        20.0,
        "feed: seconds to wait for the server (the whole fetch: 3 times this).",
        minimum=0.1,
        maximum=600,
    )


@dataclass(frozen=True)
class StoreConfig:
    url: str = _h(
        "sqlite:///publisher.db",
        "SQLAlchemy URL; a relative SQLite path is beside config.toml. PostgreSQL: "
        '`postgresql://USER:PASSWORD@HOST:PORT/DB` (or `postgres://`; needs `pip install "psycopg[binary]"`).',
    )
    url_env: str = _h(
        "",
        "Environment variable holding the store URL (keeps a password out of config.toml); "
        "when it is set and not empty it wins over `url`; when it is not, `url` is used if given, "
        "else the command stops (a run without it never starts a new, empty store).",
    )
    lease: int = _h(
        60,
        "Seconds the site's lock (and the scheduler's) lasts, by the database's clock, unless its "
        "holder renews it: a holder that stopped answering loses it after this (a killed one's at once).",
        minimum=3,
        maximum=86400,
    )
    lock_wait: float = _h(
        10.0,
        "Seconds a command waits for another writer of the site (or a database write lock) before giving up.",
        minimum=0,
        maximum=86400,
    )


@dataclass(frozen=True)
class OutputConfig:
    dir: Path = _h(Path("public"), "Folder the feeds and web edition are written to.", path=True)


@dataclass(frozen=True)
class FeedsConfig:
    items: int = _h(50, "Newest N articles per feed.", minimum=1, maximum=100_000)
    websub_hub: str = _h(
        "", "WebSub hub URL: feeds carry rel=hub and changed feeds are announced to it.", check="url?"
    )
    icon: str = _h("", "Small square icon (URL, or path under base_url) for feeds; empty: none.")
    logo: str = _h("", "Wide logo image (URL, or path under base_url) for feeds; empty: none.")


SUBJECT_NAMES = ("site", "date", "articles", "groups", "updated", "more", "tz")  # a subject's names


@dataclass(frozen=True)
class DigestConfig:
    from_: str = _h("Publisher <digest@localhost>", "From header of the digest.", key="from", check="address")
    subject: str = _h(
        "{{ site.title }} — {{ date }}",
        "Jinja2 template of the subject; site, date and articles are available.",
        template=SUBJECT_NAMES,
    )
    max_articles: int = _h(20, "Most articles shown in one digest.", minimum=1, maximum=1000)
    skip_if_empty: bool = _h(True, "Send nothing when there are no new articles.")
    postal_address: str = _h("", "Postal address shown in the footer (required by CAN-SPAM).")
    reply_to: str = _h(
        "",
        "Reply-To of the digest: a person's address for readers' replies; the unsubscribe mail pipe"
        " forwards every other mail to it. Empty: replies go to the From address.",
        check="address?",
    )
    list_id: str = _h(
        "",
        'ASCII id of the mailing list (List-Id is `"<site.title>" <digest.<list_id>>`); '
        "empty: the base_url host.",
        check="list_id",
    )


@dataclass(frozen=True)
class Newsletter:
    """One ``[[newsletters]]`` table: a newsletter of the site. Without any, ``[digest]``
    and ``[schedule] digest`` define one keyed ``digest`` (``Config.newsletters``)."""

    key: str = _h("", "Letters, digits and hyphens, unique: used in URLs, List-Id and commands.", check="key")
    title: str = _h("", "The newsletter's name, shown to readers (required).")
    description: str = _h("", "One line about it, shown on the subscribe form and the preference centre.")
    schedule: str = _h(
        "",
        'Cron (site timezone) of its issues; `"instant"`: as new articles arrive; `""`: by hand only.',
        check="schedule",
    )
    sections: list[str] = _h([], "Categories it carries (names or slugs); empty: every article.")
    reader_sections: bool = _h(False, "A reader may narrow it to some of its sections.")
    max_articles: int = _h(20, "Most articles shown in one issue.", minimum=1, maximum=1000)
    subject: str = _h(
        "{{ newsletter.title }} — {{ date }}",
        "Jinja2 template of the subject; newsletter, site, date and articles are available.",
        template=("newsletter", *SUBJECT_NAMES),
    )
    template: str = _h(
        "digest", "Its templates: `templates/<template>.html`, `.txt` and `.css`.", check="template"
    )
    signup: bool = _h(True, "Offered, ticked, on the site's subscribe form.")
    min_interval: int = _h(
        0, "Minutes at least between two issues (a cap for instant newsletters).", minimum=0, maximum=525_600
    )
    approval: bool = _h(False, "Issues wait for an editor's approval (`publish issues approve KEY`).")
    editors: list[str] = _h([], "Addresses that get a test copy of each held issue.", check="addresses")
    # Not a key: each section's name as the configuration spells it ("Economy" for the
    # slug "economy"), for readers when no article has shown the name yet.
    section_names: dict[str, str] = field(default_factory=dict, metadata={"internal": True})


@dataclass(frozen=True)
class SmtpConfig:
    host: str = _h("localhost", "SMTP server.")
    port: int = _h(587, "SMTP port.", minimum=1, maximum=65535)
    security: str = _h("starttls", '"starttls", "ssl" or "none".', choices=("starttls", "ssl", "none"))
    username: str = _h("", "AUTH user name; empty: no AUTH.")
    password_env: str = _h("PUBLISHER_SMTP_PASSWORD", "Environment variable holding the password.")
    connections: int = _h(4, "Parallel connections, each reused for many messages.", minimum=1, maximum=100)
    rate: float = _h(
        0.0,
        "Messages per second over all connections; 0 = unlimited.",
        minimum=0.001,
        maximum=100_000,
        zero=True,
    )
    timeout: float = _h(30.0, "Seconds before a silent server is given up on.", minimum=1, maximum=3600)


@dataclass(frozen=True)
class DeliveryConfig:
    transport: str = _h("maildir", '"maildir" or "smtp".', choices=("maildir", "smtp"))
    maildir: Path = _h(Path("outbox"), "Maildir the maildir transport delivers into.", path=True)
    smtp: SmtpConfig = field(default_factory=SmtpConfig, metadata={"help": "SMTP transport."})
    workers: int = _h(
        0,
        "Sender processes of `publish now`, the scheduler and `publish deliver`, each with its own "
        "`smtp.connections`; they claim the queue in batches, so each reader gets one copy. "
        "0: one per core of the machine. A run starts no more than one per 100 queued deliveries; "
        "they share `smtp.rate`.",
        minimum=0,
        maximum=256,
    )
    retries: int = _h(
        3, "Tries again after a temporary (4xx) failure before leaving it queued.", minimum=0, maximum=20
    )
    retry_delay: float = _h(
        2.0, "Seconds before the first retry; doubles for each further one.", minimum=0, maximum=3600
    )
    bounce_limit: int = _h(
        3,
        "Hard (5xx) failures before an address is marked bounced; 5.1.1 bounces at once.",
        minimum=1,
        maximum=1000,
    )
    return_path: str = _h(
        "",
        "Envelope sender (MAIL FROM) of every message, e.g. `bounces@news.example.com`: each message gets "
        "`bounces+<token>@news.example.com` (VERP; the signed token names the delivery, never the address), "
        "so a bounce names its delivery. Deliver that address to `publish bounces`. Empty: the From address.",
        check="return_path",
    )
    dkim_selector: str = _h(
        "",
        "DKIM selector; with dkim_domain and dkim_key_file: sign every message (digests and confirmations).",
    )
    dkim_domain: str = _h("", "DKIM signing domain (d=), usually the From address's domain.")
    dkim_key_file: Path | None = _h(
        None, "PEM file with the DKIM private key (RSA, 2048 bits or more).", path=True
    )


@dataclass(frozen=True)
class BouncesConfig:
    soft_limit: int = _h(
        3,
        "Soft bounces (mailbox full, 4.x.x) within soft_window_days that suspend an address.",
        minimum=1,
        maximum=1000,
    )
    soft_window_days: int = _h(14, "Days over which soft bounces are counted.", minimum=1, maximum=365)
    soft_suspend_days: int = _h(
        30,
        "Days an address suspended for soft bounces gets nothing; 0: until `publish suppressions remove`.",
        minimum=0,
        maximum=3650,
    )
    keep: Path = _h(
        Path("bounces-unread"),
        "Maildir where `publish bounces` keeps mail from its pipe (stdin) that it cannot read.",
        path=True,
    )
    imap_host: str = _h(
        "", "IMAP server holding the return path's mail; empty: `publish bounces` reads stdin."
    )
    imap_port: int = _h(993, "IMAP port (993: TLS from the start; 143: STARTTLS).", minimum=1, maximum=65535)
    imap_security: str = _h(
        "ssl", '"ssl" (993), "starttls" or "none" (loopback only).', choices=("ssl", "starttls", "none")
    )
    imap_user: str = _h("", "IMAP user name.")
    imap_password_env: str = _h("PUBLISHER_IMAP_PASSWORD", "Environment variable holding the IMAP password.")
    imap_folder: str = _h("INBOX", "IMAP folder the bounces arrive in.")
    timeout: float = _h(60.0, "Seconds before a silent IMAP server is given up on.", minimum=1, maximum=3600)


@dataclass(frozen=True)
class ScheduleConfig:
    collect: str = _h(
        "*/15 * * * *",
        "Cron (site timezone): collect and rebuild feeds. Standard 5 fields; a 6-field form "
        'with a leading seconds field (e.g. `*/2 * * * * *`) exists for tests; `""` disables the job.',
        check="cron",
    )
    digest: str = _h(
        "0 7 * * *", "Cron (site timezone): collect, rebuild feeds and send the digest.", check="cron"
    )
    grace: int = _h(
        3600,
        "Seconds a run missed while no scheduler ran may be late: it then runs once on start; "
        "a run missed by more is skipped and logged.",
        minimum=1,
        maximum=30 * 86400,
    )


@dataclass(frozen=True)
class ServerConfig:
    host: str = _h("127.0.0.1", "Address publish serve listens on.")
    port: int = _h(8000, "Port publish serve listens on.", minimum=1, maximum=65535)
    secret_env: str = _h(
        "PUBLISHER_SECRET",
        "Environment variable with the signing secret; unset: one is kept in the store.",
    )
    mails_per_address: int = _h(
        3, "Most confirmation mails POST /subscribe sends one address an hour.", minimum=1, maximum=1000
    )
    requests_per_client: int = _h(
        20, "Most POST /subscribe requests from one client address an hour.", minimum=1, maximum=1_000_000
    )
    trusted_proxies: list[str] = _h(
        [],
        "Addresses or networks of reverse proxies whose X-Forwarded-For names the client "
        '(e.g. `["127.0.0.1"]` behind nginx on the same machine); empty: the header is ignored.',
    )
    read_timeout: float = _h(
        10.0,
        "Seconds a client has to send a whole request (head and body) before it is cut off.",
        minimum=0.5,
        maximum=3600,
    )
    max_connections: int = _h(
        500,
        "Open connections at most; past it the longest-waiting idle one is closed for a new one.",
        minimum=2,
        maximum=100_000,
    )
    max_header_bytes: int = _h(
        16384, "Largest request head (request line and headers) accepted.", minimum=1024, maximum=1024**2
    )
    hsts: int = _h(
        0,
        "Strict-Transport-Security max-age in seconds on every answer (browsers heed it over HTTPS "
        "only: set it when a TLS proxy is in front); 0: none.",
        minimum=0,
        maximum=2 * 365 * 86400,
    )


@dataclass(frozen=True)
class WebhooksConfig:
    ses_topics: list[str] = _h(
        [],
        "ARNs of the SNS topics SES reports to; POST /webhooks/ses takes only their (signed) messages. "
        "Empty: that webhook is off.",
    )
    sns_cert_hosts: str = _h(
        r"sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?",
        "Regular expression the host of an SNS SigningCertURL and SubscribeURL must match (https only).",
        check="regex",
    )
    sns_ca_file: Path | None = _h(
        None, "PEM file of the CAs trusted when fetching SNS certificates; empty: the system's.", path=True
    )
    postmark_user_env: str = _h(
        "PUBLISHER_POSTMARK_USER",
        "Environment variable with the basic auth user set on the Postmark webhook.",
    )
    postmark_password_env: str = _h(
        "PUBLISHER_POSTMARK_PASSWORD",
        "Environment variable with its password; unset: POST /webhooks/postmark is off.",
    )
    mailgun_key_env: str = _h(
        "PUBLISHER_MAILGUN_SIGNING_KEY",
        "Environment variable with Mailgun's webhook signing key; unset: POST /webhooks/mailgun is off.",
    )
    sendgrid_key_env: str = _h(
        "PUBLISHER_SENDGRID_PUBLIC_KEY",
        "Environment variable with SendGrid's event webhook verification key (base64 or PEM); "
        "unset: POST /webhooks/sendgrid is off.",
    )
    max_age: int = _h(
        300,
        "Seconds a signed Mailgun or SendGrid timestamp may be from now; older requests are refused as stale.",
        minimum=10,
        maximum=86400,
    )


@dataclass(frozen=True)
class DeliverabilityConfig:
    pause_rate: float = _h(
        0.1,
        "Share of the deliveries tried to one mailbox provider in a run that 4.7.x policy deferrals "
        "(rate limits, unusual volume) may reach before sending to it pauses for the run (its "
        "deliveries stay queued); a 5.7.x policy refusal of the message pauses it at once.",
        minimum=0.001,
        maximum=1,
    )
    pause_after: int = _h(
        3, "Policy deferrals from one provider before pause_rate applies.", minimum=1, maximum=10_000
    )


@dataclass(frozen=True)
class DnsConfig:
    resolver: str = _h(
        "",
        'DNS server for publish doctor and the MX lookups of publish deliverability: "host" or '
        '"host:port" (e.g. `"127.0.0.1:5353"`); empty: the system\'s resolver.',
        check="resolver",
    )
    timeout: float = _h(5.0, "Seconds to wait for a DNS answer.", minimum=0.1, maximum=120)


@dataclass(frozen=True)
class DoctorConfig:
    sending_ips: list[str] = _h(
        [],
        "Addresses (or host names) your mail leaves from, for the SPF check; empty: delivery.smtp.host.",
    )
