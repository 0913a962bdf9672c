"""``publish bounces`` (the return path's mail) and ``publish suppressions ...``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from publisher import bounces as intake
from publisher import suppression
from publisher.cli.app import EX_TEMPFAIL, fail, handles_errors, load_config, main, site_store
from publisher.config import load
from publisher.errors import PublisherError, UsageError
from publisher.i18n import count
from publisher.store import Store

# What mail servers put in a pipe's environment: the address the mail was delivered to
# (Postfix: ORIGINAL_RECIPIENT and RECIPIENT; Exim and qmail: RECIPIENT).
_ENVELOPE_VARIABLES = ("ORIGINAL_RECIPIENT", "RECIPIENT")


@main.command("bounces")
@click.option(
    "--maildir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Read every new mail of this Maildir (done ones move to cur/).",
)
@click.option("--imap", is_flag=True, help="Read the unseen mail of the [bounces] IMAP folder.")
@click.pass_context
def bounces(ctx: click.Context, maildir: Path | None, imap: bool) -> None:
    """Record bounces and complaints sent to the return path.

    Without options, one mail is read on stdin: a mail pipe for the return path, e.g.
    in /etc/aliases: bounces: "|publish --config /srv/news/config.toml bounces".
    It exits 0 once the mail is recorded (or kept, when it cannot be read) and 75
    (try again later) when it could not be, so the mail server keeps it."""
    if maildir is not None and imap:
        fail("give --maildir PATH or --imap, not both", 2)
    if maildir is None and not imap:
        _pipe(ctx)
        return
    try:
        cfg = load_config(ctx)
        store = Store.of(cfg)
        try:
            if imap:
                if not cfg.bounces.imap_host:
                    raise UsageError(f"{cfg.path}: bounces.imap_host: set it to read an IMAP folder")
                report = intake.from_imap(cfg, store)
            else:
                assert maildir is not None
                report = intake.from_maildir(cfg, store, maildir.resolve())
        finally:
            store.close()
    except PublisherError as exc:
        fail(str(exc), exc.exit_code)
    _print(report)


def _pipe(ctx: click.Context) -> None:
    if sys.stdin.isatty():
        fail("give a mail on stdin (a mail pipe), --maildir PATH or --imap", 2)
    raw = sys.stdin.buffer.read()
    envelope_to = [os.environ[v] for v in _ENVELOPE_VARIABLES if os.environ.get(v)]
    try:
        cfg = load(ctx.obj)
        store = Store.of(cfg)
        try:
            report = intake.from_pipe(cfg, store, raw, envelope_to)
        finally:
            store.close()
    except PublisherError as exc:  # the mail is not recorded: the mail server keeps it
        click.echo(f"publish: {exc}; the mail server will try again later", err=True)
        sys.exit(EX_TEMPFAIL)
    _print(report)


def _print(report: intake.IntakeReport) -> None:
    for problem in report.unreadable:
        click.echo(problem, err=True)
    for ignored in report.ignored:
        click.echo(ignored, err=True)
    r = report.recorded
    parts = [
        count(report.mails, "%(num)s mail read", "%(num)s mails read"),
        count(r.new, "%(num)s event recorded", "%(num)s events recorded"),
        count(r.duplicates, "%(num)s already known", "%(num)s already known"),
        count(len(r.suppressed), "%(num)s address suppressed", "%(num)s addresses suppressed"),
        count(len(r.suspended), "%(num)s suspended", "%(num)s suspended"),
        count(len(report.unreadable), "%(num)s kept unread", "%(num)s kept unread"),
    ]
    click.echo(", ".join(parts))
    for address in r.suppressed:
        click.echo(f"suppressed {address}")
    for address in r.suspended:
        click.echo(f"suspended {address} (soft bounces)")


@main.group()
def suppressions() -> None:
    """Addresses and domains that are never sent anything."""


@suppressions.command("list")
@click.option("--all", "everything", is_flag=True, help="Also suspensions that have ended.")
@click.pass_context
@handles_errors
def suppressions_list(ctx: click.Context, everything: bool) -> None:
    """One line per entry: entry, reason, since, until, detail."""
    from datetime import UTC, datetime

    for s in site_store(ctx).feedback.suppressions(None if everything else datetime.now(UTC)):
        click.echo(suppression.line(s))


@suppressions.command("add")
@click.argument("entries", nargs=-1, required=True)
@click.option("--detail", default="", help="Why (kept with the entry).")
@click.pass_context
@handles_errors
def suppressions_add(ctx: click.Context, entries: tuple[str, ...], detail: str) -> None:
    """Suppress ADDRESS or @DOMAIN (several may be given)."""
    store = site_store(ctx)
    checked = [suppression.entry_of(e) for e in entries]  # all checked before any is added
    for entry in checked:
        _, added = suppression.add(store, entry, detail)
        click.echo(f"suppressed {entry}" if added else f"already suppressed: {entry}")


@suppressions.command("remove")
@click.argument("entries", nargs=-1, required=True)
@click.pass_context
@handles_errors
def suppressions_remove(ctx: click.Context, entries: tuple[str, ...]) -> None:
    """Remove ADDRESS or @DOMAIN from the list (a bounced or unsubscribed address
    still needs `subscribers add --resubscribe` to receive again)."""
    store = site_store(ctx)
    for e in entries:
        click.echo(f"removed {suppression.remove(store, e)}")


@suppressions.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.pass_context
@handles_errors
def suppressions_import(ctx: click.Context, file: str) -> None:
    """Import a CSV with an 'entry' (or 'email') column; optional: reason, created, expires, detail."""
    from publisher.csvrows import open_checked

    with open_checked(file) as lines:
        report = suppression.import_csv(
            site_store(ctx), lines, file, on_problem=lambda problem: click.echo(problem, err=True)
        )
    click.echo(f"{report.added} added, {report.unchanged} unchanged, {report.rejected} rejected")


@suppressions.command("export")
@click.pass_context
@handles_errors
def suppressions_export(ctx: click.Context) -> None:
    """Write every entry as CSV to stdout."""
    for chunk in suppression.export_csv(site_store(ctx).feedback.suppressions()):
        click.echo(chunk, nl=False)
