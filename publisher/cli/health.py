"""``publish doctor`` (what a bulk sender must fix in DNS and configuration) and
``publish deliverability`` (how each mailbox provider treats the mail)."""

from __future__ import annotations

import dataclasses
import json

import click

from publisher.cli.app import fail, handles_errors, load_config, main
from publisher.store import Store


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@click.pass_context
@handles_errors
def doctor(ctx: click.Context, as_json: bool) -> None:
    """Check SPF, DKIM, DMARC, MX, the unsubscribe URL and the return path: one line
    each; exit 1 when something must be fixed."""
    from publisher import doctor as checks

    findings = checks.examine(load_config(ctx))
    to_fix = sum(f.level == "fix" for f in findings)
    warnings = sum(f.level == "warn" for f in findings)
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(f) for f in findings], indent=2, ensure_ascii=False))
    else:
        for f in findings:
            click.echo(f.line())
        click.echo(f"{to_fix} to fix, {warnings} to look at")
    if to_fix:
        fail(f"{to_fix} to fix before bulk sending (see the FIX lines)", 1)


@main.command()
@click.option(
    "--issues",
    type=click.IntRange(1, 1000),
    metavar="N",
    default=5,
    show_default=True,
    help="How many of the last issues.",
)
@click.option("--newsletter", default=None, metavar="KEY", help="Only this newsletter's issues (its key).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
@handles_errors
def deliverability(ctx: click.Context, issues: int, newsletter: str | None, as_json: bool) -> None:
    """Per mailbox provider (Gmail, Outlook, Yahoo, iCloud, Naver, Daum, other): the last
    issues' sent, deferred, bounced and complained counts and rates, and the commonest replies."""
    from publisher import deliverability as health

    cfg = load_config(ctx)
    with Store.of(cfg) as store:
        found = health.report(cfg, store, issues=issues, newsletter=newsletter)
    if as_json:
        click.echo(json.dumps(found.as_dict(), indent=2, ensure_ascii=False))
    else:
        for line in found.lines():
            click.echo(line)
