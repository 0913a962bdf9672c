"""Configuration: one table of settings (key, default, type, help) -> a frozen Config.

Each ``[section]`` of config.toml is a frozen dataclass below; its fields are the
keys, their defaults, their types and (in ``help``) what they mean. The README's
configuration reference is generated from these same fields (``publisher.config
.reference()``), so the two cannot drift. Unknown keys, wrong types, an unknown
timezone or a malformed URL stop with one line naming the file, the key and the
problem (``ConfigError``, exit code 2).
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from publisher.addresses import email_address, http_url
from publisher.errors import ConfigError

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
        "when it is set and not empty it wins over `url`.",
    )
    lease: int = _h(
        60,
        "Seconds the site's lock (and the scheduler's) lasts unless its holder renews it; "
        "a killed holder's lock is taken over after this.",
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


@dataclass(frozen=True)
class Config:
    """The whole site's settings; ``root`` is the folder holding config.toml."""

    path: Path
    root: Path
    site: SiteConfig = field(default_factory=SiteConfig)
    sources: tuple[SourceConfig, ...] = ()
    store: StoreConfig = field(default_factory=StoreConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    feeds: FeedsConfig = field(default_factory=FeedsConfig)
    digest: DigestConfig = field(default_factory=DigestConfig)
    # [[newsletters]], or the one newsletter "digest" that [digest] and [schedule] define
    newsletters: tuple[Newsletter, ...] = ()
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)
    bounces: BouncesConfig = field(default_factory=BouncesConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    webhooks: WebhooksConfig = field(default_factory=WebhooksConfig)
    deliverability: DeliverabilityConfig = field(default_factory=DeliverabilityConfig)
    dns: DnsConfig = field(default_factory=DnsConfig)
    doctor: DoctorConfig = field(default_factory=DoctorConfig)

    def newsletter(self, key: str) -> Newsletter | None:
        """The newsletter with this key, or None."""
        return next((n for n in self.newsletters if n.key == key), None)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.site.timezone)

    @property
    def templates_dir(self) -> Path:
        """The site's own templates folder (may be absent: the packaged theme is used)."""
        return self.root / "templates"

    @property
    def store_url(self) -> str:
        """The store URL (from ``store.url_env`` when that variable is set and not empty)
        with a relative SQLite path resolved beside config.toml."""
        url = (os.environ.get(self.store.url_env, "") if self.store.url_env else "") or self.store.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/"):
            rest = url[len(prefix) :]
            if rest and rest != ":memory:" and not rest.startswith(":"):
                return prefix + str(self.root / rest)
        return url


SECTIONS: dict[str, type] = {
    "site": SiteConfig,
    "store": StoreConfig,
    "output": OutputConfig,
    "feeds": FeedsConfig,
    "digest": DigestConfig,
    "delivery": DeliveryConfig,
    "bounces": BouncesConfig,
    "schedule": ScheduleConfig,
    "server": ServerConfig,
    "webhooks": WebhooksConfig,
    "deliverability": DeliverabilityConfig,
    "dns": DnsConfig,
    "doctor": DoctorConfig,
}


def load(path: str | os.PathLike[str] | None = None) -> Config:
    """Read and check a site's config.toml; raise ConfigError on any problem."""
    cfg_path = Path(path if path is not None else DEFAULT_CONFIG)
    try:
        raw = cfg_path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(cfg_path, None, "no such file (run 'publish init' or pass --config PATH)") from None
    except OSError as exc:
        raise ConfigError(cfg_path, None, f"cannot read: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(cfg_path, None, "not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(cfg_path, None, f"invalid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(cfg_path, None, "invalid TOML: arrays or tables nested too deeply") from None
    return from_dict(data, cfg_path)


def from_dict(data: dict[str, Any], cfg_path: Path) -> Config:
    root = cfg_path.resolve().parent
    reader = _Reader(cfg_path, root)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key == "sources":
            if not isinstance(value, list):
                raise ConfigError(cfg_path, "sources", "must be an array of tables ([[sources]])")
            kwargs["sources"] = tuple(
                reader.section(SourceConfig, item, f"sources[{i}]") for i, item in enumerate(value)
            )
        elif key == "newsletters":
            if not isinstance(value, list) or not value:
                raise ConfigError(cfg_path, "newsletters", "must be an array of tables ([[newsletters]])")
            kwargs["newsletters"] = tuple(
                _newsletter(cfg_path, reader.section(Newsletter, item, f"newsletters[{i}]"), i)
                for i, item in enumerate(value)
            )
        elif key in SECTIONS:
            kwargs[key] = reader.section(SECTIONS[key], value, key)
        else:
            raise ConfigError(
                cfg_path, key, f"unknown section (known: {_known(SECTIONS, 'sources', 'newsletters')})"
            )
    for key, cls in SECTIONS.items():  # absent sections too: their default paths are beside config.toml
        if key not in kwargs:
            kwargs[key] = reader.section(cls, {}, key)
    if "newsletters" in kwargs:
        _check_unique_keys(cfg_path, kwargs["newsletters"])
        for section, key in (("digest", "subject"), ("digest", "max_articles"), ("schedule", "digest")):
            if isinstance(data.get(section), dict) and key in data[section]:
                raise ConfigError(
                    cfg_path, f"{section}.{key}", "set it in each [[newsletters]] table (the site has some)"
                )
    else:
        kwargs["newsletters"] = (_the_digest(kwargs["site"], kwargs["digest"], kwargs["schedule"]),)
    config = Config(path=cfg_path, root=root, **kwargs)
    for i, source in enumerate(config.sources):
        _check_source(cfg_path, i, source)
    _check_dkim(cfg_path, config.delivery)
    return config


def _the_digest(site: SiteConfig, digest: DigestConfig, schedule: ScheduleConfig) -> Newsletter:
    """The newsletter of a site without ``[[newsletters]]``: ``[digest]`` as before."""
    return Newsletter(
        key="digest",
        title=site.title,
        description=site.description,
        schedule=schedule.digest,
        max_articles=digest.max_articles,
        subject=digest.subject,
    )


def _newsletter(cfg_path: Path, newsletter: Newsletter, i: int) -> Newsletter:
    """Required keys, and the sections as slugs (the one rule: ``links.category_slug``)."""
    from publisher.links import category_slug
    from publisher.text import single_line

    for required in ("key", "title"):
        if not getattr(newsletter, required).strip():
            raise ConfigError(cfg_path, f"newsletters[{i}].{required}", "required")
    names: dict[str, str] = {}
    for name in newsletter.sections:
        clean = single_line(name)
        if not clean:
            raise ConfigError(cfg_path, f"newsletters[{i}].sections", "a section name is empty")
        names.setdefault(category_slug(clean), clean)
    return dataclasses.replace(newsletter, sections=list(names), section_names=names)


def _check_unique_keys(cfg_path: Path, newsletters: tuple[Newsletter, ...]) -> None:
    seen: dict[str, int] = {}
    for i, newsletter in enumerate(newsletters):
        folded = newsletter.key.lower()
        if folded in seen:
            raise ConfigError(
                cfg_path,
                f"newsletters[{i}].key",
                f"{newsletter.key!r} is already the key of newsletters[{seen[folded]}]",
            )
        seen[folded] = i


def _check_dkim(cfg_path: Path, delivery: DeliveryConfig) -> None:
    keys = {
        "dkim_selector": delivery.dkim_selector,
        "dkim_domain": delivery.dkim_domain,
        "dkim_key_file": delivery.dkim_key_file,
    }
    given = [k for k, v in keys.items() if v]
    if given and len(given) != len(keys):
        missing = next(k for k in keys if k not in given)
        raise ConfigError(cfg_path, f"delivery.{missing}", f"required for DKIM signing (set with {given[0]})")
    if delivery.dkim_key_file is not None:
        _check_dkim_key(cfg_path, delivery.dkim_key_file)


def _check_dkim_key(cfg_path: Path, path: Path) -> None:
    """The DKIM key must be an RSA private key in PEM of at least 1024 bits
    (2048 recommended); a key that cannot sign is a configuration error."""
    import dkim.crypto

    where = "delivery.dkim_key_file"
    if not path.is_file():
        raise ConfigError(cfg_path, where, f"no such file: {path}")
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise ConfigError(cfg_path, where, f"cannot read {path}: {exc.strerror}") from None
    try:
        key = dkim.crypto.parse_pem_private_key(pem)
    except Exception:  # dkimpy raises several types for what is not an RSA key
        raise ConfigError(cfg_path, where, f"{path} is not an RSA private key in PEM form") from None
    bits = key["modulus"].bit_length()
    if bits < 1024:
        raise ConfigError(
            cfg_path, where, f"{path} is a {bits}-bit key; DKIM needs 1024 bits or more (use 2048)"
        )


def _check_source(cfg_path: Path, i: int, source: SourceConfig) -> None:
    if source.type == "directory":
        if source.path is None:
            raise ConfigError(cfg_path, f"sources[{i}].path", "required for a directory source")
    elif source.type == "feed":
        if not source.url:
            raise ConfigError(cfg_path, f"sources[{i}].url", "required for a feed source")
        _check_url(cfg_path, f"sources[{i}].url", source.url)
    else:
        raise ConfigError(
            cfg_path, f"sources[{i}].type", f'unknown source type "{source.type}" (known: directory, feed)'
        )


def _known(table: Any, *extra: str) -> str:
    return ", ".join(sorted([*table, *extra]))


def _keys(cls: type) -> list[dataclasses.Field[Any]]:
    """The fields of a settings table that are configuration keys (not derived ones)."""
    return [f for f in dataclasses.fields(cls) if not f.metadata.get("internal")]


def toml_key(f: dataclasses.Field[Any]) -> str:
    return f.metadata.get("key", f.name)


class _Reader:
    def __init__(self, cfg_path: Path, root: Path) -> None:
        self.cfg_path = cfg_path
        self.root = root

    def section(self, cls: type, value: Any, where: str) -> Any:
        if not isinstance(value, dict):
            raise ConfigError(self.cfg_path, where, "must be a table")
        hints = typing.get_type_hints(cls)
        fields = {toml_key(f): f for f in _keys(cls)}
        kwargs = {}
        for key, item in value.items():
            f = fields.get(key)
            if f is None:
                raise ConfigError(self.cfg_path, f"{where}.{key}", f"unknown key (known: {_known(fields)})")
            kwargs[f.name] = self.value(f, hints[f.name], item, f"{where}.{key}")
        for f in _keys(cls):
            if f.name in kwargs:
                continue
            if isinstance(f.default, Path):  # a relative default is beside config.toml, not the cwd
                kwargs[f.name] = self.root / f.default
            elif f.default_factory is not dataclasses.MISSING and dataclasses.is_dataclass(f.default_factory):
                kwargs[f.name] = self.section(f.default_factory, {}, f"{where}.{toml_key(f)}")
        return cls(**kwargs)

    def value(self, f: dataclasses.Field[Any], hint: Any, item: Any, where: str) -> Any:
        if dataclasses.is_dataclass(hint):
            return self.section(hint, item, where)
        meta = f.metadata
        expected = _expected(hint)
        if expected is Path:
            if not isinstance(item, str) or not item:
                raise ConfigError(self.cfg_path, where, "must be a path (a non-empty string)")
            path = Path(item).expanduser()
            return path if path.is_absolute() else self.root / path
        if expected is list:
            if isinstance(item, str):
                item = [item]
            if not isinstance(item, list) or not all(isinstance(x, str) for x in item):
                raise ConfigError(self.cfg_path, where, "must be a string or an array of strings")
            if meta.get("check") == "addresses":
                for address in item:
                    _check_address(self.cfg_path, where, address)
            return item
        if expected is float and isinstance(item, int) and not isinstance(item, bool):
            item = float(item)
        if not isinstance(item, expected) or (expected is int and isinstance(item, bool)):
            raise ConfigError(
                self.cfg_path, where, f"must be {_TYPE_NAMES[expected]}, not {type(item).__name__} {item!r}"
            )
        if expected in (int, float):
            _check_range(self.cfg_path, where, item, meta)
        if "choices" in meta and item not in meta["choices"]:
            raise ConfigError(
                self.cfg_path, where, f"must be one of {', '.join(meta['choices'])}, not {item!r}"
            )
        check = meta.get("check")
        if check == "tz":
            try:
                ZoneInfo(item)
            except (ZoneInfoNotFoundError, ValueError):
                raise ConfigError(
                    self.cfg_path, where, f"unknown timezone {item!r} (use an IANA name such as Asia/Seoul)"
                ) from None
        elif check == "url" or (check == "url?" and item):
            _check_url(self.cfg_path, where, item)
        elif check == "address" or (check == "address?" and item):
            _check_address(self.cfg_path, where, item)
        elif check == "return_path" and item:
            _check_return_path(self.cfg_path, where, item)
        elif check == "language":
            _check_language(self.cfg_path, where, item)
        elif check == "list_id" and item and not _LIST_ID.fullmatch(item):
            raise ConfigError(
                self.cfg_path,
                where,
                f"must be ASCII labels joined by dots, such as news.example.com, not {item!r}",
            )
        elif check == "regex":
            try:
                re.compile(item)
            except re.error as exc:
                raise ConfigError(self.cfg_path, where, f"not a regular expression: {exc}") from None
        elif check == "resolver" and item:
            from publisher.resolver import parse_server

            try:
                parse_server(item)
            except ValueError:
                raise ConfigError(
                    self.cfg_path,
                    where,
                    f'must be an IP address with an optional port, such as "127.0.0.1:5353", not {item!r}',
                ) from None
        elif check == "cron" or (check == "schedule" and item not in ("", "instant")):
            from publisher import cron

            try:
                cron.trigger(item, ZoneInfo("UTC"))
            except ValueError as exc:
                either = 'must be a cron expression, "instant" or "": ' if check == "schedule" else ""
                raise ConfigError(self.cfg_path, where, f"{either}{exc}") from None
        elif check == "key" and not _KEY.fullmatch(item):
            raise ConfigError(
                self.cfg_path,
                where,
                f"must be 1 to 64 ASCII letters, digits and hyphens (not first or last), not {item!r}",
            )
        elif check == "template":
            self._check_theme(where, item)
        if "template" in meta:
            _check_template(self.cfg_path, where, item, meta["template"])
        return item

    def _check_theme(self, where: str, name: str) -> None:
        """``templates/<name>.html``, ``.txt`` and ``.css``: each in the site's templates
        folder or the packaged theme."""
        from publisher.render import default_templates

        if not _TEMPLATE_NAME.fullmatch(name):
            raise ConfigError(self.cfg_path, where, f"must be a file name without a suffix, not {name!r}")
        folders = (self.root / "templates", default_templates())
        for suffix in (".html", ".txt", ".css"):
            if not any((folder / f"{name}{suffix}").is_file() for folder in folders):
                raise ConfigError(
                    self.cfg_path,
                    where,
                    f"no templates/{name}{suffix} (in {folders[0]} or the packaged theme)",
                )


_LIST_ID = re.compile(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*")
_KEY = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?")
_TEMPLATE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def _check_range(cfg_path: Path, where: str, item: float, meta: Any) -> None:
    """A number within its field's ``minimum`` and ``maximum`` (``zero``: 0 means
    "off" and is allowed too); NaN and infinity never are."""
    if not math.isfinite(item):
        raise ConfigError(cfg_path, where, f"must be a finite number, not {item}")
    if item == 0 and meta.get("zero"):
        return
    low, high = meta.get("minimum", -math.inf), meta.get("maximum", math.inf)
    if not low <= item <= high:
        allowed = f"from {_number(low)} to {_number(high)}" + (" (or 0: off)" if meta.get("zero") else "")
        raise ConfigError(cfg_path, where, f"must be {allowed}, not {_number(item)}")


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def _check_template(cfg_path: Path, where: str, source: str, names: tuple[str, ...]) -> None:
    """A Jinja2 template given in the configuration: it must parse, and use only the
    names it is rendered with (it is rendered in a sandbox, see ``render``)."""
    from jinja2 import TemplateSyntaxError, meta
    from jinja2.sandbox import SandboxedEnvironment

    try:
        tree = SandboxedEnvironment().parse(source)
    except TemplateSyntaxError as exc:
        raise ConfigError(cfg_path, where, f"template syntax error: {exc.message}") from None
    unknown = sorted(meta.find_undeclared_variables(tree) - set(names))
    if unknown:
        raise ConfigError(
            cfg_path,
            where,
            f"unknown name {unknown[0]!r} in the template (available: {', '.join(names)})",
        )


_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def _expected(hint: Any) -> type:
    origin = typing.get_origin(hint)
    if origin is list:
        return list
    if origin in (typing.Union, __import__("types").UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return _expected(args[0])
    return hint


def _check_return_path(cfg_path: Path, where: str, value: str) -> None:
    """A bare address whose local part leaves room for ``+<token>`` within RFC 5321's 64."""
    from publisher.tokens import RETURN_TOKEN_LENGTH

    if "<" in value or " " in value.strip() or "@" not in value:
        raise ConfigError(
            cfg_path, where, f"must be a bare address such as bounces@example.com, not {value!r}"
        )
    try:
        address = email_address(value.strip(), local_domain=True)
    except ValueError as exc:
        raise ConfigError(cfg_path, where, f"not a valid address {value!r}: {exc}") from None
    local = address.rpartition("@")[0]
    room = 64 - 1 - RETURN_TOKEN_LENGTH
    if "+" in local or len(local) > room:
        raise ConfigError(
            cfg_path,
            where,
            f"the local part {local!r} must be at most {room} characters without '+' "
            "(VERP adds +<token> within the 64 that RFC 5321 allows)",
        )


def _check_language(cfg_path: Path, where: str, value: str) -> None:
    from babel import Locale, UnknownLocaleError

    try:
        Locale.parse(value.replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        raise ConfigError(
            cfg_path, where, f"unknown language tag {value!r} (such as en, ko or pt-BR)"
        ) from None


def _check_url(cfg_path: Path, where: str, value: str) -> None:
    if http_url(value) != value:
        raise ConfigError(cfg_path, where, f"must be an absolute http(s) URL, not {value!r}")


def _check_address(cfg_path: Path, where: str, value: str) -> None:
    from email.headerregistry import Address
    from email.utils import parseaddr

    name, addr = parseaddr(value)
    if "@" not in addr or any(c in value for c in "\r\n"):
        raise ConfigError(
            cfg_path, where, f"must be an address such as 'Name <user@example.com>', not {value!r}"
        )
    try:
        email_address(addr, local_domain=True)
        Address(display_name=name, addr_spec=addr)
    except (ValueError, IndexError) as exc:
        raise ConfigError(cfg_path, where, f"not a valid address {value!r}: {exc}") from None


def reference() -> str:
    """The configuration reference as Markdown, generated from the settings table."""
    lines = ["| key | default | meaning |", "| --- | --- | --- |"]

    def walk(cls: type, prefix: str) -> None:
        for f in _keys(cls):
            key = f"{prefix}.{toml_key(f)}"
            if f.default_factory is not dataclasses.MISSING and dataclasses.is_dataclass(f.default_factory):
                walk(f.default_factory, key)  # type: ignore[arg-type]
                continue
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
            shown = _show_default(default)
            meaning = f.metadata.get("help", "")
            if "maximum" in f.metadata:
                low = (
                    f"0 or {_number(f.metadata['minimum'])}"
                    if f.metadata.get("zero")
                    else _number(f.metadata["minimum"])
                )
                meaning += f" Range: {low} to {_number(f.metadata['maximum'])}."
            lines.append(f"| `{key}` | {shown} | {meaning} |")

    for name, cls in SECTIONS.items():
        walk(cls, name)
        if name == "site":
            walk(SourceConfig, "[[sources]]")
        if name == "digest":
            walk(Newsletter, "[[newsletters]]")
    return "\n".join(lines)


def _show_default(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, bool):
        return f"`{'true' if value else 'false'}`"
    if isinstance(value, str):
        return f'`"{value}"`' if value else '`""`'
    if isinstance(value, list):
        return "`[" + ", ".join(f'"{v}"' for v in value) + "]`"
    return f"`{value}`"


if __name__ == "__main__":  # python -m publisher.config: the README's reference table
    print(reference())
