"""The Jinja2 environment: the site's own ``templates/`` first, then the packaged theme.

The default theme is the single copy in the repository's ``templates/`` folder; a
wheel ships it as ``publisher/templates`` (see pyproject.toml), so an installed
publisher finds it without the source tree.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from publisher.config import Config
from publisher.i18n import Language, english, for_config

PACKAGE_DIR = Path(__file__).resolve().parent


def default_templates() -> Path:
    """The packaged theme: inside the package when installed from a wheel, else the
    repository's templates/ folder (an editable install or a source checkout)."""
    for candidate in (PACKAGE_DIR / "templates", PACKAGE_DIR.parent / "templates"):
        if (candidate / "digest.html").is_file():
            return candidate
    raise FileNotFoundError("the default templates are missing from this installation")


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
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,  # one environment per run: no stat() per extends/include
        extensions=["jinja2.ext.i18n"],
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
