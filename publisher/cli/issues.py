"""``publish issues ...``: the issues of the site's newsletters, and the held ones an
editor approves, skips or proofs."""

from __future__ import annotations

import click

from publisher import issues as issue_rules
from publisher import pipeline
from publisher.cli.app import fail, handles_errors, load_config, main
from publisher.cli.steps import delivered_line
from publisher.store import Store


@main.group()
def issues() -> None:
    """List the newsletters' issues; approve, skip or proof a held one."""


@issues.command("list")
@click.option(
    "--newsletter", "newsletters", multiple=True, help="Only this newsletter's issues (repeatable)."
)
@click.pass_context
@handles_errors
def issues_list(ctx: click.Context, newsletters: tuple[str, ...]) -> None:
    """Every issue, newest first: key, state, deliveries, subject."""
    cfg = load_config(ctx)
    keys = [n.key for n in issue_rules.chosen(cfg, newsletters)] if newsletters else [None]
    store = Store.of(cfg)
    try:
        for key in keys:
            for d in store.ledger.all_digests(key):
                counts = store.ledger.delivery_counts(d.id)
                sent = ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "no deliveries"
                click.echo(f"{d.issue_key}\t{d.status}\t{sent}\t{d.subject}")
    finally:
        store.close()


@issues.command("approve")
@click.argument("key")
@click.pass_context
@handles_errors
def issues_approve(ctx: click.Context, key: str) -> None:
    """Send a held issue to its readers (their choices as they are now)."""
    cfg = load_config(ctx)
    report = pipeline.approve(cfg, key, pipeline.Options(what="publish issues approve"))
    click.echo(f"approved {key}")
    click.echo(delivered_line(cfg, report))
    failure = report.failure()
    if failure:
        fail(failure, 1)


@issues.command("skip")
@click.argument("key")
@click.pass_context
@handles_errors
def issues_skip(ctx: click.Context, key: str) -> None:
    """Discard a held issue: nothing is sent; its articles wait for the next issue."""
    pipeline.skip(load_config(ctx), key, pipeline.Options(what="publish issues skip"))
    click.echo(f"skipped {key}: its articles wait for the next issue")


@issues.command("test")
@click.argument("key")
@click.option("--to", "to", required=True, metavar="EMAIL", help="The address that gets the test copy.")
@click.pass_context
@handles_errors
def issues_test(ctx: click.Context, key: str, to: str) -> None:
    """Send a test copy of an issue (marked as held) to one address."""
    cfg = load_config(ctx)
    store = Store.of(cfg)
    try:
        issue_rules.send_test(cfg, store, key, to)
    finally:
        store.close()
    click.echo(f"test copy of {key} sent to {to}")
