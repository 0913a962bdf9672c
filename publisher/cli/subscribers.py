"""``publish subscribers ...``: managing who receives which newsletter."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import click

from publisher import audience
from publisher.cli.app import EX_TEMPFAIL, handles_errors, load_config, main, site_store


@main.group()
def subscribers() -> None:
    """Manage who receives which newsletter."""


@subscribers.command("add")
@click.argument("email")
@click.option("--name", default="", help="The subscriber's name.")
@click.option(
    "--newsletter",
    "newsletters",
    multiple=True,
    metavar="KEY",
    help="A newsletter to subscribe to (repeat for more; default: those with signup = true).",
)
@click.option(
    "--sections",
    default="",
    metavar="NAME,...",
    help="Only these sections, in the newsletters that let readers choose.",
)
@click.option("--resubscribe", is_flag=True, help="Reactivate an unsubscribed or bounced address.")
@click.pass_context
@handles_errors
def subscribers_add(
    ctx: click.Context, email: str, name: str, newsletters: tuple[str, ...], sections: str, resubscribe: bool
) -> None:
    """Add an active subscriber to newsletters (default: those with signup = true)."""
    store = site_store(ctx)
    sub, outcome = audience.add(
        store,
        email,
        name,
        config=load_config(ctx),
        newsletters=list(newsletters) or None,
        sections=[s for s in sections.split(",") if s.strip()],
        resubscribe=resubscribe,
    )
    click.echo(
        {
            audience.Added.ADDED: "added",
            audience.Added.ALREADY: "already subscribed:",
            audience.Added.REACTIVATED: "reactivated",
            audience.Added.SUBSCRIBED: "subscribed",
        }[outcome]
        + f" {sub.email}"
    )
    held = store.feedback.suppressed(sub.email, datetime.now(UTC))
    if held is not None:  # added, but the suppression list still wins: say so
        click.echo(
            f"note: {held.entry} is on the suppression list ({held.reason}): {sub.email} gets nothing "
            f"until `publish suppressions remove {held.entry}`",
            err=True,
        )


@subscribers.command("remove")
@click.argument("email")
@click.pass_context
@handles_errors
def subscribers_remove(ctx: click.Context, email: str) -> None:
    """Unsubscribe an address from every newsletter (kept, so it is never mailed again by mistake)."""
    sub = audience.remove(site_store(ctx), email)
    click.echo(f"unsubscribed {sub.email}")


@subscribers.command("list")
@click.option("--status", type=click.Choice(["pending", "active", "unsubscribed", "bounced"]))
@click.option("--newsletter", metavar="KEY", help="Only this newsletter's subscribers, with their sections.")
@click.pass_context
@handles_errors
def subscribers_list(ctx: click.Context, status: str | None, newsletter: str | None) -> None:
    """List subscribers with their status and newsletters (tab-separated).

    With --newsletter: each of its subscribers, the subscription's status and the
    sections they chose ("all": everything it carries)."""
    store = site_store(ctx)
    if newsletter is not None:
        audience.choices(load_config(ctx), [newsletter])  # an unknown key is one line
        for person, got in store.subscriptions.members(newsletter):
            if status is None or got.status == status:
                click.echo(f"{person.email}\t{got.status}\t{person.name}\t{','.join(got.sections) or 'all'}")
        return
    for group in store.subscribers.batches(status=status):
        keys = store.subscriptions.keys_of(s.id for s in group)
        for s in group:
            click.echo(f"{s.email}\t{s.status}\t{s.name}\t{' '.join(keys.get(s.id, []))}")


@subscribers.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--resubscribe", is_flag=True, help="Reactivate unsubscribed addresses in the file.")
@click.pass_context
@handles_errors
def subscribers_import(ctx: click.Context, file: str, resubscribe: bool) -> None:
    """Import a CSV file with an 'email' column (optionally 'name', and 'newsletters':
    keys separated by spaces; empty: those with signup = true)."""
    from publisher.csvrows import open_checked

    with open_checked(file) as lines:
        report = audience.import_csv(
            site_store(ctx),
            lines,
            file,
            config=load_config(ctx),
            resubscribe=resubscribe,
            on_problem=lambda problem: click.echo(problem, err=True),
        )
    more = f"{report.subscribed} subscribed to more newsletters, " if report.subscribed else ""
    click.echo(
        f"{report.added} added, {report.reactivated} reactivated, {more}"
        f"{report.already} already subscribed, {report.rejected} rejected"
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
        sys.exit(EX_TEMPFAIL)


@subscribers.command("export")
@click.pass_context
@handles_errors
def subscribers_export(ctx: click.Context) -> None:
    """Write all subscribers as CSV to stdout (with a 'newsletters' column)."""
    for chunk in audience.export_csv(site_store(ctx)):
        click.echo(chunk, nl=False)
