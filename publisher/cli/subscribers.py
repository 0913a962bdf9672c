"""``publish subscribers ...``: managing who receives the digest."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from publisher import audience
from publisher.cli.app import handles_errors, load_config, main, site_store
from publisher.errors import UsageError


@main.group()
def subscribers() -> None:
    """Manage who receives the digest."""


@subscribers.command("add")
@click.argument("email")
@click.option("--name", default="", help="The subscriber's name.")
@click.option("--resubscribe", is_flag=True, help="Reactivate an unsubscribed or bounced address.")
@click.pass_context
@handles_errors
def subscribers_add(ctx: click.Context, email: str, name: str, resubscribe: bool) -> None:
    """Add an active subscriber."""
    sub, outcome = audience.add(
        site_store(ctx), email, name, config=load_config(ctx), resubscribe=resubscribe
    )
    click.echo(
        {
            "added": "added",
            "already": "already subscribed:",
            "reactivated": "reactivated",
            "subscribed": "subscribed",
        }[outcome]
        + f" {sub.email}"
    )


@subscribers.command("remove")
@click.argument("email")
@click.pass_context
@handles_errors
def subscribers_remove(ctx: click.Context, email: str) -> None:
    """Unsubscribe an address (kept, so it is never mailed again by mistake)."""
    sub = audience.remove(site_store(ctx), email)
    click.echo(f"unsubscribed {sub.email}")


@subscribers.command("list")
@click.option("--status", type=click.Choice(["pending", "active", "unsubscribed", "bounced"]))
@click.pass_context
@handles_errors
def subscribers_list(ctx: click.Context, status: str | None) -> None:
    """List subscribers with their status."""
    for s in site_store(ctx).subscribers.all(status):
        click.echo(f"{s.email}\t{s.status}\t{s.name}")


@subscribers.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--resubscribe", is_flag=True, help="Reactivate unsubscribed addresses in the file.")
@click.pass_context
@handles_errors
def subscribers_import(ctx: click.Context, file: str, resubscribe: bool) -> None:
    """Import a CSV file with an 'email' column (and optionally 'name')."""
    try:
        text = Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{file}: cannot read: {exc}") from None
    report = audience.import_csv(
        site_store(ctx), text, file, config=load_config(ctx), resubscribe=resubscribe
    )
    for problem in report.problems:
        click.echo(problem, err=True)
    click.echo(
        f"{report.added} added, {report.reactivated} reactivated, {report.already} already subscribed, {len(report.problems)} rejected"
    )


@subscribers.command("unsubscribe-mail")
@click.pass_context
@handles_errors
def subscribers_unsubscribe_mail(ctx: click.Context) -> None:
    """Act on an unsubscribe mail read from stdin (the List-Unsubscribe mailto: link).

    Meant as a mail pipe for the digest's From address, e.g. in /etc/aliases:
    digest: "|publish --config /srv/news/config.toml subscribers unsubscribe-mail".
    Any other mail (a reader's reply, a request without a valid token) is forwarded
    to digest.reply_to when set. Exits 0 even for a mail that is no valid request,
    so the sender gets no bounce; 75 (try again later) when forwarding failed."""
    from publisher.errors import DeliveryError
    from publisher.replies import forward
    from publisher.signup import Signup, token_in_mail
    from publisher.tokens import signer_for

    cfg = load_config(ctx)
    store = site_store(ctx)
    raw = sys.stdin.buffer.read()
    token = token_in_mail(raw)
    if token is None:
        why = "no 'unsubscribe <token>' in the subject"
    else:
        signer = signer_for(cfg.server.secret_env, store.meta.get_or_create_secret)
        found = Signup(cfg, store, signer).unsubscribe(token)
        if found.subscriber is not None:
            click.echo(f"unsubscribed {found.subscriber.email}")
            return
        why = f"the token is {found.reason}"
    if not cfg.digest.reply_to:
        click.echo(f"ignored: {why} (set digest.reply_to to forward such mail to a person)", err=True)
        return
    try:
        click.echo(forward(cfg, raw, why), err=True)
    except DeliveryError as exc:
        click.echo(f"publish: could not forward the mail to {cfg.digest.reply_to}: {exc}", err=True)
        sys.exit(75)  # EX_TEMPFAIL: the mail server keeps the mail and tries again


@subscribers.command("export")
@click.pass_context
@handles_errors
def subscribers_export(ctx: click.Context) -> None:
    """Write all subscribers as CSV to stdout."""
    for chunk in audience.export_csv(site_store(ctx)):
        click.echo(chunk, nl=False)
