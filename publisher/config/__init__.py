"""Configuration: one table of settings (key, default, type, help) -> a frozen Config.

Each ``[section]`` of config.toml is a frozen dataclass in ``tables``; its fields are
the keys, their defaults, their types and (in ``help``) what they mean. ``reader``
checks a table's values against it. The README's configuration reference is generated
from these same fields (``reference()``), so the two cannot drift. Unknown keys, wrong
types, an unknown timezone or a malformed URL stop with one line naming the file, the
key and the problem (``ConfigError``, exit code 2).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from publisher.config.reader import Reader, check_url, keys, known, number, toml_key
from publisher.config.tables import (
    DEFAULT_CONFIG,
    SUBJECT_NAMES,
    BouncesConfig,
    DeliverabilityConfig,
    DeliveryConfig,
    DigestConfig,
    DnsConfig,
    DoctorConfig,
    FeedsConfig,
    Newsletter,
    OutputConfig,
    ScheduleConfig,
    ServerConfig,
    SiteConfig,
    SmtpConfig,
    SourceConfig,
    StoreConfig,
    WebhooksConfig,
)
from publisher.errors import ConfigError

__all__ = [
    "BouncesConfig",
    "Config",
    "DEFAULT_CONFIG",
    "DeliverabilityConfig",
    "DeliveryConfig",
    "DigestConfig",
    "DnsConfig",
    "DoctorConfig",
    "FeedsConfig",
    "Newsletter",
    "OutputConfig",
    "SECTIONS",
    "SUBJECT_NAMES",
    "ScheduleConfig",
    "ServerConfig",
    "SiteConfig",
    "SmtpConfig",
    "SourceConfig",
    "StoreConfig",
    "WebhooksConfig",
    "from_dict",
    "load",
    "reference",
    "toml_key",
]


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
    reader = Reader(cfg_path, root)
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
                cfg_path, key, f"unknown section (known: {known(SECTIONS, 'sources', 'newsletters')})"
            )
    for key, cls in SECTIONS.items():  # absent sections too: their default paths are beside config.toml
        if key not in kwargs:
            kwargs[key] = reader.section(cls, {}, key)
    if "newsletters" in kwargs:
        _check_keys(cfg_path, kwargs["newsletters"])
        for section, key in (("digest", "subject"), ("digest", "max_articles"), ("schedule", "digest")):
            if isinstance(data.get(section), dict) and key in data[section]:
                raise ConfigError(
                    cfg_path, f"{section}.{key}", "set it in each [[newsletters]] table (the site has some)"
                )
    else:
        kwargs["newsletters"] = (_the_digest(kwargs["site"], kwargs["digest"], kwargs["schedule"]),)
    _check_store(cfg_path, data.get("store"))
    config = Config(path=cfg_path, root=root, **kwargs)
    for i, source in enumerate(config.sources):
        _check_source(cfg_path, i, source)
    _check_dkim(cfg_path, config.delivery)
    return config


def _check_store(cfg_path: Path, table: Any) -> None:
    """``store.url_env`` without ``store.url``: the variable must be set. Else a run
    without the operator's environment (a cron job) would start a new, empty SQLite
    site: no readers, and a new signing secret that breaks every link already mailed."""
    if not isinstance(table, dict) or "url" in table:
        return
    name = table.get("url_env")
    if name and not os.environ.get(name):
        raise ConfigError(
            cfg_path,
            "store.url_env",
            f"the environment variable {name} is not set: set it to the store's URL, "
            "or give store.url too (used when it is not set)",
        )


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


# Names a newsletter key may not take: the scheduler's jobs are named by the keys.
RESERVED_KEYS = {"collect": "the name of the scheduler's collect job"}


def _check_keys(cfg_path: Path, newsletters: tuple[Newsletter, ...]) -> None:
    """Each newsletter key unique (case aside) and none of the reserved names."""
    seen: dict[str, int] = {}
    for i, newsletter in enumerate(newsletters):
        folded = newsletter.key.lower()
        if folded in RESERVED_KEYS:
            raise ConfigError(
                cfg_path, f"newsletters[{i}].key", f"{newsletter.key!r} is reserved ({RESERVED_KEYS[folded]})"
            )
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
        check_url(cfg_path, f"sources[{i}].url", source.url)
    else:
        raise ConfigError(
            cfg_path, f"sources[{i}].type", f'unknown source type "{source.type}" (known: directory, feed)'
        )


def reference() -> str:
    """The configuration reference as Markdown, generated from the settings table."""
    lines = ["| key | default | meaning |", "| --- | --- | --- |"]

    def walk(cls: type, prefix: str) -> None:
        for f in keys(cls):
            key = f"{prefix}.{toml_key(f)}"
            if f.default_factory is not dataclasses.MISSING and dataclasses.is_dataclass(f.default_factory):
                walk(f.default_factory, key)  # type: ignore[arg-type]
                continue
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
            shown = _show_default(default)
            meaning = f.metadata.get("help", "")
            if "maximum" in f.metadata:
                low = (
                    f"0 or {number(f.metadata['minimum'])}"
                    if f.metadata.get("zero")
                    else number(f.metadata["minimum"])
                )
                meaning += f" Range: {low} to {number(f.metadata['maximum'])}."
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
