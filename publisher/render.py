"""The Jinja2 environment: the site's own ``templates/`` first, then the packaged theme.

The default theme is the single copy in the repository's ``templates/`` folder; a
wheel ships it as ``publisher/templates`` (see pyproject.toml), so an installed
publisher finds it without the source tree.
"""

from __future__ import annotations

import hashlib
import logging
import os
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from jinja2.bccache import Bucket, FileSystemBytecodeCache
from jinja2.sandbox import SandboxedEnvironment

from publisher.config import Config
from publisher.i18n import Language, english, for_config

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent


def default_templates() -> Path:
    """The packaged theme: inside the package when installed from a wheel, else the
    repository's templates/ folder (an editable install or a source checkout)."""
    for candidate in (PACKAGE_DIR / "templates", PACKAGE_DIR.parent / "templates"):
        if (candidate / "digest.html").is_file():
            return candidate
    raise FileNotFoundError("the default templates are missing from this installation")


# What else decides how a template compiles (with the environment's class and
# autoescape): part of each compiled template's cache key.
_OPTIONS: dict[str, Any] = {
    "trim_blocks": True,
    "lstrip_blocks": True,
    "keep_trailing_newline": True,
    "extensions": ["jinja2.ext.i18n"],
}


def environment(
    site_templates: Path | None = None,
    *,
    autoescape: bool = True,
    language: Language | None = None,
    sandboxed: bool = False,
) -> jinja2.Environment:
    """``sandboxed``: for templates written in config.toml (the digest subject), which
    may then reach no attribute or method a template has no business with.

    The theme's environment, speaking ``language`` (English when None): ``_()``,
    ``ngettext()`` and ``{% trans %}`` translate through its catalog; the filters
    ``datetime``, ``date``, ``short_date`` and ``number`` format for its locale, in
    the site's timezone."""
    language = language or english()
    search = [p for p in (site_templates, default_templates()) if p is not None and p.is_dir()]
    kind = SandboxedEnvironment if sandboxed else jinja2.Environment
    env = kind(
        loader=jinja2.FileSystemLoader([str(p) for p in dict.fromkeys(search)]),
        autoescape=jinja2.select_autoescape(["html", "xml"], default_for_string=autoescape)
        if autoescape
        else False,
        undefined=jinja2.StrictUndefined,
        auto_reload=False,  # one environment per run: no stat() per extends/include
        bytecode_cache=_bytecode_cache(kind.__name__, bool(autoescape)),
        **_OPTIONS,
    )
    env.install_gettext_translations(language.catalog, newstyle=True)  # type: ignore[attr-defined]
    env.filters["datetime"] = language.datetime
    env.filters["date"] = language.date
    env.filters["short_date"] = language.short_date
    env.filters["number"] = language.number
    env.filters["relative"] = _relative
    env.globals["language"] = language
    env.filters["localtime"] = _localtime
    env.filters["isotime"] = _isotime
    return env


def site_environment(
    config: Config, *, autoescape: bool = True, sandboxed: bool = False
) -> jinja2.Environment:
    """The environment of a site: its own templates first, its language."""
    return environment(
        config.templates_dir, autoescape=autoescape, language=for_config(config), sandboxed=sandboxed
    )


@jinja2.pass_context
def _relative(context: Any, url: str) -> str:
    """A URL of the site as the page at hand should link it: from ``root`` (``""``,
    ``"../"``, ... for a page of the web edition, so it works opened as a file and
    on any host; the base path for the server's own pages). Without ``root`` (mail,
    feeds) and for other sites' URLs: unchanged, absolute."""
    root, links = context.get("root"), context.get("links")
    if root is None or links is None or not isinstance(url, str) or not url.startswith(links.base):
        return url
    rest = url[len(links.base) :]
    if rest or root.startswith("/"):
        return root + rest
    return root + "index.html"  # a folder opened as a file would list the folder


def _localtime(value: datetime, tz: Any, fmt: str = "%-d %B %Y, %H:%M") -> str:
    return value.astimezone(tz).strftime(fmt)


def _isotime(value: datetime, tz: Any) -> str:
    """ISO 8601 in ``tz``, for ``<time datetime>`` and metadata (a filter: cheaper than a call)."""
    return value.astimezone(tz).isoformat()


class _BytecodeCache(FileSystemBytecodeCache):
    """Compiled templates kept between runs (Jinja loads one only when its source's
    checksum matches: an edited template is compiled afresh). ``flavour`` names the
    environment's options, so environments that compile a template differently never
    share an entry. A cache that cannot be written is skipped: it never fails a run."""

    def __init__(self, directory: str, flavour: str) -> None:
        super().__init__(directory)
        self.flavour = flavour

    def get_cache_key(self, name: str, filename: str | None = None) -> str:
        key = f"{self.flavour}|{name}|{filename}".encode()
        return hashlib.sha1(key, usedforsecurity=False).hexdigest()

    def dump_bytecode(self, bucket: Bucket) -> None:
        try:
            super().dump_bytecode(bucket)
        except OSError as exc:  # a full disk, a read-only home: compiled again next run
            log.debug("template cache not written: %s", exc)


@cache
def _bytecode_cache(kind: str, autoescape: bool) -> _BytecodeCache | None:
    """The cache of compiled templates for one kind of environment: in the user's cache
    folder (``$XDG_CACHE_HOME`` or ``~/.cache``, ``publisher/templates``), else Jinja's
    private folder in the temporary directory; None when neither can be made."""
    flavour = f"{kind}|autoescape={autoescape}|newstyle_gettext|{_OPTIONS}"
    home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = os.path.join(home, "publisher", "templates")
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        made = os.stat(folder)
        # code is loaded from it: only from a folder nobody else can write to
        if made.st_uid == os.getuid() and not made.st_mode & 0o022 and os.access(folder, os.W_OK):
            return _BytecodeCache(folder, flavour)
    except OSError:
        pass
    try:
        return _BytecodeCache(FileSystemBytecodeCache()._get_default_cache_dir(), flavour)
    except (OSError, RuntimeError) as exc:
        log.debug("no template cache: %s", exc)
        return None
