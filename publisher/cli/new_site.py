"""``publish init``: a new site folder that works with the packaged theme."""

from __future__ import annotations

import json
import shutil
from email.utils import quote
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click

from publisher.cli.app import handles_errors, main
from publisher.errors import UsageError
from publisher.i18n import N_, Language, parse_locale
from publisher.text import single_line

# The example article and the placeholders a new site starts with, in the site's language.
WELCOME_TITLE = N_("Welcome to your new publication")
WELCOME_AUTHOR = N_("The Editors")
WELCOME_SECTION = N_("News")
WELCOME_BODY = N_(
    "This is an example article. Put your articles in `articles/` as Markdown with front "
    "matter like this one, or as plain-text exports, then run `publish now`."
)
DESCRIPTION = N_("News from %(title)s")
DEFAULT_TITLE = N_("My Newsroom")
POSTAL_ADDRESS = N_("Street, City, Country")

EXAMPLE_ARTICLE = """\
+++
title = {title}
published = {published}
authors = [{author}]
tags = [{section}]
+++
{body}
"""

INIT_CONFIG = """\
[site]
title = {title}
description = {description}
base_url = "http://127.0.0.1:8000/"
language = {language}
timezone = {timezone}

[[sources]]
type = "directory"
path = "articles"

[digest]
from = {sender}
postal_address = {postal_address}
"""


@main.command()
@click.argument("directory", type=click.Path(file_okay=False), default=".", metavar="DIR")
@click.option("--title", help="The publication's name.  [default: My Newsroom, in the site's language]")
@click.option(
    "--language",
    metavar="TAG",
    default="en",
    show_default=True,
    help="Language tag of the site (site.language): en, ko, ... The example article, the description "
    "and every word readers see are in it.",
)
@click.option(
    "--timezone",
    metavar="ZONE",
    default="UTC",
    show_default=True,
    help="IANA zone of the site (site.timezone), e.g. Asia/Seoul.",
)
@click.option("--templates", "copy_templates", is_flag=True, help="Copy the default theme to customise it.")
@handles_errors
def init(directory: str, title: str | None, language: str, timezone: str, copy_templates: bool) -> None:
    """Create a new site folder with config.toml and an example article, in the site's
    language (publish init news --language ko --timezone Asia/Seoul starts a Korean
    site in KST)."""
    from datetime import UTC, datetime

    from publisher.render import default_templates

    try:
        parse_locale(language)
    except ValueError:
        raise UsageError(f"--language: unknown language tag {language!r} (such as en, ko or pt-BR)") from None
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(
            f"--timezone: unknown timezone {timezone!r} (use an IANA name such as Asia/Seoul)"
        ) from None
    root = Path(directory)
    cfg = root / "config.toml"
    if cfg.exists():
        raise UsageError(f"{cfg} already exists; not overwriting it")
    (root / "articles").mkdir(parents=True, exist_ok=True)

    def toml(text: str) -> str:  # a JSON string is a valid TOML basic string
        return json.dumps(text, ensure_ascii=False)

    words = Language.of(language, UTC)
    title = single_line(title or "") or words.gettext(DEFAULT_TITLE)
    sender = f'"{quote(title)}" <digest@example.com>'
    cfg.write_text(
        INIT_CONFIG.format(
            title=toml(title),
            description=toml(words.gettext(DESCRIPTION, title=title)),
            language=toml(language),
            timezone=toml(timezone),
            sender=toml(sender),
            postal_address=toml(words.gettext(POSTAL_ADDRESS)),
        ),
        encoding="utf-8",
    )
    stamp = datetime.now(UTC).replace(microsecond=0).isoformat()
    (root / "articles" / "welcome.md").write_text(
        EXAMPLE_ARTICLE.format(
            title=toml(words.gettext(WELCOME_TITLE)),
            published=stamp,
            author=toml(words.gettext(WELCOME_AUTHOR)),
            section=toml(words.gettext(WELCOME_SECTION)),
            body=words.gettext(WELCOME_BODY),
        ),
        encoding="utf-8",
    )
    if copy_templates:
        shutil.copytree(default_templates(), root / "templates", dirs_exist_ok=False)
    click.echo(f"created {cfg}; next: cd {root} && publish subscribers add you@example.com && publish now")
