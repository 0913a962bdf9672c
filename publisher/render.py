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

PACKAGE_DIR = Path(__file__).resolve().parent


def default_templates() -> Path:
    """The packaged theme: inside the package when installed from a wheel, else the
    repository's templates/ folder (an editable install or a source checkout)."""
    for candidate in (PACKAGE_DIR / "templates", PACKAGE_DIR.parent / "templates"):
        if (candidate / "digest.html").is_file():
            return candidate
    raise FileNotFoundError("the default templates are missing from this installation")


def environment(
    site_templates: Path | None = None, *, autoescape: bool = True, sandboxed: bool = False
) -> jinja2.Environment:
    """``sandboxed``: for templates written in config.toml (the digest subject), which
    may then reach no attribute or method a template has no business with."""
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
    env.install_null_translations(newstyle=True)  # type: ignore[attr-defined]
    env.filters["localtime"] = _localtime
    env.filters["isotime"] = _isotime
    return env


def _localtime(value: datetime, tz: Any, fmt: str = "%-d %B %Y, %H:%M") -> str:
    return value.astimezone(tz).strftime(fmt)


def _isotime(value: datetime, tz: Any) -> str:
    """ISO 8601 in ``tz``, for ``<time datetime>`` and metadata (a filter: cheaper than a call)."""
    return value.astimezone(tz).isoformat()
