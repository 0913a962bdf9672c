"""The interface language: gettext catalogs and Babel's dates, numbers and plurals.

``site.language`` picks a catalog: ``publisher/locale/<lang>/LC_MESSAGES/messages.po``
ships in the package (``en`` and ``ko``); a site's own
``locale/<lang>/LC_MESSAGES/messages.po`` (beside config.toml) adds a language or
overrides single messages. Catalogs are read as ``.po`` and compiled in memory when
first used (Babel), so an editable install, a wheel and a fresh clone behave alike:
there is no build step and no ``.mo`` to go stale.

Every reader-visible string goes through ``Language``: templates call ``_()``,
``ngettext()`` and ``{% trans %}`` (``jinja2.ext.i18n``) and the filters
``datetime``, ``date`` and ``number``; Python code calls ``gettext``/``ngettext``.
Date patterns are messages too (see ``DATETIME``), so a catalog decides how its
language writes a date; Babel supplies the month and weekday names.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from babel import Locale, UnknownLocaleError
from babel.dates import format_datetime
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po
from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations

if TYPE_CHECKING:
    from publisher.config import Config

PACKAGE_LOCALE = Path(__file__).resolve().parent / "locale"
DOMAIN = "messages"


def N_(message: str) -> str:  # noqa: N802 - the conventional gettext marker
    """Mark a string for extraction; it is translated where it is shown."""
    return message


# Babel (CLDR) patterns, translated per catalog: en "26 May 2025, 14:50",
# ko "2025년 5월 26일 (월) 오후 2:50".
DATETIME = N_("d MMMM y, HH:mm")
DATE = N_("d MMMM y")
SHORT_DATE = N_("d MMM y")


def parse_locale(tag: str) -> Locale:
    """The Babel locale of a language tag (``en``, ``ko``, ``pt-BR``, ``zh_Hant``);
    ``ValueError`` for a tag Babel does not know."""
    try:
        return Locale.parse(tag.replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError) as exc:
        raise ValueError(f"unknown language {tag!r} ({exc})") from None


def catalog_paths(tag: str, site_root: Path | None = None) -> list[Path]:
    """The catalogs of a language, lowest priority first: the packaged one, then the
    site's own. ``ko_KR`` also reads ``ko``'s, under its own."""
    locale = parse_locale(tag)
    names = [locale.language]
    if str(locale) != locale.language:
        names.append(str(locale))
    roots = [PACKAGE_LOCALE] + ([site_root / "locale"] if site_root is not None else [])
    found = []
    for root in roots:
        for name in names:
            for suffix in (".po", ".mo"):
                path = root / name / "LC_MESSAGES" / (DOMAIN + suffix)
                if path.is_file():
                    found.append(path)
    return found


def _compiled(path: Path) -> Translations:
    if path.suffix == ".mo":
        with path.open("rb") as fh:
            return Translations(fh, domain=DOMAIN)
    with path.open("rb") as fh:
        catalog = read_po(fh, domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer, domain=DOMAIN)


_lock = threading.Lock()


@lru_cache(maxsize=32)
def _load(paths: tuple[tuple[Path, int], ...]) -> NullTranslations:
    """The catalogs merged (later ones override), keyed by path and mtime."""
    merged: NullTranslations | None = None
    for path, _ in paths:
        t = _compiled(path)
        if merged is None:
            merged = t
        else:
            merged.merge(t)  # type: ignore[attr-defined]
    return merged if merged is not None else NullTranslations()


def translations(tag: str, site_root: Path | None = None) -> NullTranslations:
    paths = tuple((p, p.stat().st_mtime_ns) for p in catalog_paths(tag, site_root))
    with _lock:
        return _load(paths)


@dataclass(frozen=True)
class Language:
    """One site's interface language: its translations, locale and timezone."""

    tag: str
    locale: Locale
    catalog: NullTranslations
    tz: tzinfo

    @classmethod
    def of(cls, tag: str, tz: tzinfo, site_root: Path | None = None) -> Language:
        return cls(tag, parse_locale(tag), translations(tag, site_root), tz)

    def gettext(self, message: str, **values: object) -> str:
        text = self.catalog.gettext(message)
        return text % values if values else text

    def ngettext(self, singular: str, plural: str, n: int, **values: object) -> str:
        """The form for ``n`` (``%(num)s`` is the number, formatted for the locale)."""
        text = self.catalog.ngettext(singular, plural, n)
        return text % {"num": self.number(n), **values}

    def datetime(self, value: datetime, pattern: str = DATETIME) -> str:
        """``value`` in the site's timezone, written the way the language writes it."""
        return format_datetime(value.astimezone(self.tz), self.gettext(pattern), locale=self.locale)

    def date(self, value: datetime) -> str:
        return self.datetime(value, DATE)

    def short_date(self, value: datetime) -> str:
        return self.datetime(value, SHORT_DATE)

    def number(self, value: int | float) -> str:
        return format_decimal(value, locale=self.locale)


def for_config(config: Config) -> Language:
    """The language of a site (``site.language``, ``site.timezone``, its own catalogs)."""
    return Language.of(config.site.language, config.tz, config.root)


@lru_cache(maxsize=1)
def english() -> Language:
    return Language.of("en", UTC)


def count(n: int, singular: str, plural: str) -> str:
    """``n`` with the right English noun form for the command line ("1 article",
    "2 articles"); its output (like its options and logs) is the operator's, in English."""
    return english().ngettext(singular, plural, n)


# -- keeping the catalogs up to date (python -m publisher.i18n) -------------------------

_JINJA = {"trim_blocks": "true", "lstrip_blocks": "true", "newstyle_gettext": "true"}


def extract(templates: Path, package: Path) -> Catalog:
    """Every translatable string of the theme's templates and the package's code."""
    catalog = Catalog(domain=DOMAIN, project="publisher", charset="utf-8")
    sources = [
        (templates, [("**.html", "jinja2"), ("**.txt", "jinja2")], {"**.html": _JINJA, "**.txt": _JINJA}),
        (package, [("**.py", "python")], {}),
    ]
    for folder, method_map, options_map in sources:
        for filename, lineno, message, comments, context in extract_from_dir(
            folder,
            method_map,
            options_map,
            keywords={**DEFAULT_KEYWORDS, "N_": None},
            comment_tags=("Translators:",),
        ):
            where = f"{folder.name}/{filename}"
            catalog.add(message, None, [(where, lineno)], auto_comments=comments, context=context)
    return catalog


def update() -> list[Path]:
    """Merge the extracted strings into every packaged catalog (translations kept,
    vanished strings dropped); return the catalogs written."""
    from publisher.render import default_templates

    template = extract(default_templates(), Path(__file__).resolve().parent)
    written = []
    for po in sorted(PACKAGE_LOCALE.glob(f"*/LC_MESSAGES/{DOMAIN}.po")):
        with po.open("rb") as fh:
            catalog = read_po(fh, locale=po.parent.parent.name, domain=DOMAIN)
        template.creation_date = catalog.creation_date  # a stable header: no churn per run
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        catalog.fuzzy = False
        with po.open("wb") as fh:
            write_po(fh, catalog, width=100, omit_header=False, sort_output=True, include_previous=False)
        written.append(po)
    return written


if __name__ == "__main__":  # python -m publisher.i18n: refresh the catalogs after changing strings
    for path in update():
        print(f"updated {path}")
