"""Reading one table of config.toml against its settings table: every key known,
every value of its type, in its range and passing its check, or one ``ConfigError``
naming the file, the key and the problem."""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from publisher.addresses import email_address, http_url
from publisher.errors import ConfigError


def known(table: Any, *extra: str) -> str:
    return ", ".join(sorted([*table, *extra]))


def keys(cls: type) -> list[dataclasses.Field[Any]]:
    """The fields of a settings table that are configuration keys (not derived ones)."""
    return [f for f in dataclasses.fields(cls) if not f.metadata.get("internal")]


def toml_key(f: dataclasses.Field[Any]) -> str:
    return f.metadata.get("key", f.name)


class Reader:
    def __init__(self, cfg_path: Path, root: Path) -> None:
        self.cfg_path = cfg_path
        self.root = root

    def section(self, cls: type, value: Any, where: str) -> Any:
        if not isinstance(value, dict):
            raise ConfigError(self.cfg_path, where, "must be a table")
        hints = typing.get_type_hints(cls)
        fields = {toml_key(f): f for f in keys(cls)}
        kwargs = {}
        for key, item in value.items():
            f = fields.get(key)
            if f is None:
                raise ConfigError(self.cfg_path, f"{where}.{key}", f"unknown key (known: {known(fields)})")
            kwargs[f.name] = self.value(f, hints[f.name], item, f"{where}.{key}")
        for f in keys(cls):
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
        expected = expected_type(hint)
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
                    check_address(self.cfg_path, where, address)
            return item
        if expected is float and isinstance(item, int) and not isinstance(item, bool):
            item = float(item)
        if not isinstance(item, expected) or (expected is int and isinstance(item, bool)):
            raise ConfigError(
                self.cfg_path, where, f"must be {TYPE_NAMES[expected]}, not {type(item).__name__} {item!r}"
            )
        if expected in (int, float):
            check_range(self.cfg_path, where, item, meta)
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
            check_url(self.cfg_path, where, item)
        elif check == "address" or (check == "address?" and item):
            check_address(self.cfg_path, where, item)
        elif check == "return_path" and item:
            check_return_path(self.cfg_path, where, item)
        elif check == "language":
            check_language(self.cfg_path, where, item)
        elif check == "list_id" and item and not LIST_ID.fullmatch(item):
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
        elif check == "key" and not KEY.fullmatch(item):
            raise ConfigError(
                self.cfg_path,
                where,
                f"must be 1 to 64 ASCII letters, digits and hyphens (not first or last), not {item!r}",
            )
        elif check == "template":
            self._check_theme(where, item)
        if "template" in meta:
            check_template(self.cfg_path, where, item, meta["template"])
        return item

    def _check_theme(self, where: str, name: str) -> None:
        """``templates/<name>.html``, ``.txt`` and ``.css``: each in the site's templates
        folder or the packaged theme."""
        from publisher.render import default_templates

        if not TEMPLATE_NAME.fullmatch(name):
            raise ConfigError(self.cfg_path, where, f"must be a file name without a suffix, not {name!r}")
        folders = (self.root / "templates", default_templates())
        for suffix in (".html", ".txt", ".css"):
            if not any((folder / f"{name}{suffix}").is_file() for folder in folders):
                raise ConfigError(
                    self.cfg_path,
                    where,
                    f"no templates/{name}{suffix} (in {folders[0]} or the packaged theme)",
                )


LIST_ID = re.compile(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*")
KEY = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?")
TEMPLATE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def check_range(cfg_path: Path, where: str, item: float, meta: Any) -> None:
    """A number within its field's ``minimum`` and ``maximum`` (``zero``: 0 means
    "off" and is allowed too); NaN and infinity never are."""
    if not math.isfinite(item):
        raise ConfigError(cfg_path, where, f"must be a finite number, not {item}")
    if item == 0 and meta.get("zero"):
        return
    low, high = meta.get("minimum", -math.inf), meta.get("maximum", math.inf)
    if not low <= item <= high:
        allowed = f"from {number(low)} to {number(high)}" + (" (or 0: off)" if meta.get("zero") else "")
        raise ConfigError(cfg_path, where, f"must be {allowed}, not {number(item)}")


def number(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def check_template(cfg_path: Path, where: str, source: str, names: tuple[str, ...]) -> None:
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


TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def expected_type(hint: Any) -> type:
    origin = typing.get_origin(hint)
    if origin is list:
        return list
    if origin in (typing.Union, __import__("types").UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return expected_type(args[0])
    return hint


def check_return_path(cfg_path: Path, where: str, value: str) -> None:
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


def check_language(cfg_path: Path, where: str, value: str) -> None:
    from babel import Locale, UnknownLocaleError

    try:
        Locale.parse(value.replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        raise ConfigError(
            cfg_path, where, f"unknown language tag {value!r} (such as en, ko or pt-BR)"
        ) from None


def check_url(cfg_path: Path, where: str, value: str) -> None:
    if http_url(value) != value:
        raise ConfigError(cfg_path, where, f"must be an absolute http(s) URL, not {value!r}")


def check_address(cfg_path: Path, where: str, value: str) -> None:
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
