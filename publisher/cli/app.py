"""The ``publish`` group and what every command shares: reading the configuration
and turning errors into one line and an exit code (2 for bad configuration or usage,
1 for a failed run). Only this package prints and exits."""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

import click

from publisher import config as configuration
from publisher.cli.collector import ending, importing
from publisher.errors import PublisherError
from publisher.store import Store

EX_TEMPFAIL = 75  # a mail pipe's "try again later" (sysexits.h): the mail server keeps the mail

# The module of this package that adds each command. It is imported when its command
# runs (or ``--help`` lists them all): ``publish status`` does not load what sending
# needs. tests/test_cli_reference.py checks every command is here.
COMMANDS = {
    "bounces": "bounces",
    "suppressions": "bounces",
    "run": "daemon",
    "status": "daemon",
    "serve": "daemon",
    "doctor": "health",
    "deliverability": "health",
    "issues": "issues",
    "init": "new_site",
    "newsletters": "newsletters",
    "now": "steps",
    "deliver": "steps",
    "collect": "steps",
    "feeds": "steps",
    "digest": "steps",
    "subscribers": "subscribers",
}


class _Commands(click.Group):
    """The ``publish`` group: each command's module imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMANDS) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            with importing():
                importlib.import_module(f"publisher.cli.{COMMANDS[cmd_name]}")
        return super().get_command(ctx, cmd_name)

    def main(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().main(*args, **kwargs)
        finally:
            ending()


def fail(message: str, code: int) -> None:
    click.echo(f"publish: {message}", err=True)
    sys.exit(code)


def handles_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except PublisherError as exc:
            fail(str(exc), exc.exit_code)

    return wrapper


@click.group(cls=_Commands)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    metavar="PATH",
    default=None,
    help="The site's config.toml (default: ./config.toml).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log each step.")
@click.version_option(package_name="publisher")
@click.pass_context
def main(ctx: click.Context, config_path: str | None, verbose: bool) -> None:
    """Publish a newsroom's articles as feeds, a web edition and an email digest."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    ctx.obj = config_path


def load_config(ctx: click.Context) -> configuration.Config:
    try:
        return configuration.load(ctx.obj)
    except PublisherError as exc:
        fail(str(exc), exc.exit_code)
        raise  # unreachable


def site_store(ctx: click.Context) -> Store:
    return Store.of(load_config(ctx))


log_format_option = click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    help="Log lines on stderr: text with timestamps, or JSON lines for log collectors.",
)
