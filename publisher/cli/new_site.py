"""``publish init``: a new site folder that works with the packaged theme."""

from __future__ import annotations

import json
import shutil
from email.utils import quote
from pathlib import Path

import click

from publisher.cli.app import handles_errors, main
from publisher.errors import UsageError
from publisher.text import single_line

EXAMPLE_ARTICLE = """\
+++
title = "Welcome to your new publication"
published = {published}
authors = ["The Editors"]
tags = ["News"]
+++
This is an example article. Put your articles in `articles/` as Markdown with
front matter like this one, or as plain-text exports, then run `publish now`.
"""

INIT_CONFIG = """\
[site]
title = {title}
description = {description}
base_url = "http://127.0.0.1:8000/"
language = "en"
timezone = "UTC"

[[sources]]
type = "directory"
path = "articles"

[digest]
from = {sender}
postal_address = "Street, City, Country"
"""


@main.command()
@click.argument("directory", type=click.Path(file_okay=False), default=".")
@click.option("--title", default="My Newsroom", help="The publication's name.")
@click.option("--templates", "copy_templates", is_flag=True, help="Copy the default theme to customise it.")
@handles_errors
def init(directory: str, title: str, copy_templates: bool) -> None:
    """Create a new site folder with config.toml and an example article."""
    from datetime import UTC, datetime

    from publisher.render import default_templates

    root = Path(directory)
    cfg = root / "config.toml"
    if cfg.exists():
        raise UsageError(f"{cfg} already exists; not overwriting it")
    (root / "articles").mkdir(parents=True, exist_ok=True)

    def toml(text: str) -> str:  # a JSON string is a valid TOML basic string
        return json.dumps(text, ensure_ascii=False)

    title = single_line(title) or "My Newsroom"
    sender = f'"{quote(title)}" <digest@example.com>'
    cfg.write_text(
        INIT_CONFIG.format(title=toml(title), description=toml(f"News from {title}"), sender=toml(sender)),
        encoding="utf-8",
    )
    stamp = datetime.now(UTC).replace(microsecond=0).isoformat()
    (root / "articles" / "welcome.md").write_text(EXAMPLE_ARTICLE.format(published=stamp), encoding="utf-8")
    if copy_templates:
        shutil.copytree(default_templates(), root / "templates", dirs_exist_ok=False)
    click.echo(f"created {cfg}; next: cd {root} && publish subscribers add you@example.com && publish now")
