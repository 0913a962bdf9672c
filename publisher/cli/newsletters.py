"""``publish newsletters``: each newsletter with its schedule, subscribers and issues
(the same lines close ``publish status``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING

import click

from publisher.cli.app import handles_errors, load_config, main, site_store

if TYPE_CHECKING:
    from publisher.status import Issue, NewsletterStatus


@main.command("newsletters")
@click.option("--json", "as_json", is_flag=True, help="Print them as JSON.")
@click.pass_context
@handles_errors
def newsletters_command(ctx: click.Context, as_json: bool) -> None:
    """List the newsletters: schedule and next run, subscriber counts, last and held issue."""
    from publisher import status

    cfg = load_config(ctx)
    with site_store(ctx) as store:
        found = status.newsletters(cfg, store)
    if as_json:
        click.echo(json.dumps([n.as_dict() for n in found], indent=2, ensure_ascii=False))
    else:
        click.echo("\n".join(line for n in found for line in lines(n, cfg.tz)))


def lines(n: NewsletterStatus, tz: tzinfo) -> list[str]:
    """A newsletter in a few lines of text."""

    def local(when: datetime) -> str:
        return when.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")

    if n.schedule == "instant":
        when = "instant (as new articles arrive)"
    elif n.schedule:
        when = f"{n.schedule} (next: {local(n.next_run)})" if n.next_run else n.schedule
    else:
        when = "by hand only (publish now --newsletter " + n.key + ")"
    counts = ", ".join(f"{v:,} {k}" for k, v in n.subscribers.items())
    shown = [f"newsletter {n.key}: {n.title}", f"  schedule: {when}", f"  subscribers: {counts}"]
    shown.append(f"  last issue: {_issue(n.last_issue, local)}")
    if n.held is not None:
        shown.append(f"  held: {_issue(n.held, local)} (publish issues approve {n.held.key})")
    return shown


def _issue(issue: Issue | None, local: Callable[[datetime], str]) -> str:
    return "none yet" if issue is None else f"{issue.key} {issue.status} {local(issue.created)}"
