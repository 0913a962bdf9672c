"""``publish now``, ``collect``, ``feeds`` and ``digest``: one pipeline run each,
its report printed (or ``--json``), progress bars on a terminal only."""

from __future__ import annotations

import dataclasses
import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from publisher import config as configuration
from publisher import pipeline
from publisher.cli.app import fail, handles_errors, load_config, main
from publisher.errors import Stopped
from publisher.i18n import count
from publisher.pipeline import EVERYTHING, Step


def _run(
    ctx: click.Context,
    steps: tuple[Step, ...],
    options: pipeline.Options,
    as_json: bool,
    idle: str | None = None,
) -> pipeline.RunReport:
    """Run the pipeline, print its report (``idle`` when it made no issue and sent
    nothing; default: that no newsletter had anything new, when it was to make issues)
    and exit 1 if it failed. SIGTERM stops it between two messages: the rest stays queued."""
    cfg = load_config(ctx)
    if options.dry_run or options.preview:  # they send nothing
        steps = tuple(s for s in steps if s is not Step.SEND)
    if idle is None and Step.DIGEST in steps:
        idle = "digest: nothing new to send" if _single_digest(cfg) else "newsletters: nothing new to send"
    stop = threading.Event()
    options = dataclasses.replace(options, stop=stop)
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with _progress_bar() as bars:
            if bars is not None:
                options = dataclasses.replace(options, progress=bars.sending, reading=bars.reading)
            report = pipeline.run(cfg, options, steps=steps)
    except Stopped:
        fail("stopped (SIGTERM) before it finished; what was not sent stays queued for the next run", 1)
        raise  # unreachable
    finally:
        signal.signal(signal.SIGTERM, previous)
    if as_json:
        click.echo(json.dumps(_as_dict(report), indent=2, ensure_ascii=False))
    else:
        click.echo(_summary(cfg, report, idle))
    failure = report.failure()
    if failure:  # say why, so cron mails someone
        fail(failure, 1)
    return report


class _Bars:
    """Progress bars on a terminal: files read while collecting, messages while sending."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar
        self.reading_task: Any = None
        self.sending_task: Any = None
        self.sent = 0

    def reading(self, count: int) -> None:
        if self.reading_task is None:
            self.reading_task = self.bar.add_task("collecting", total=None)
        self.bar.update(self.reading_task, completed=count)

    def sending(self, done: int, total: int) -> None:
        if self.sending_task is None:
            self.sending_task = self.bar.add_task("sending", total=total)
        elif done < self.sent:  # the next unfinished digest
            self.bar.reset(self.sending_task, total=total)
        self.sent = done
        self.bar.update(self.sending_task, completed=done, total=total)


@contextmanager
def _progress_bar() -> Iterator[_Bars | None]:
    """Progress bars for long work, on a terminal only (logs and CI stay quiet)."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        yield _Bars(bar)


def _as_dict(report: pipeline.RunReport) -> dict[str, Any]:
    data = dataclasses.asdict(report)
    if report.collect is not None:
        data["collect"] = {k: v for k, v in data["collect"].items()}
    return data


def _single_digest(cfg: configuration.Config) -> bool:
    """A site without [[newsletters]]: its one newsletter is the digest."""
    return [n.key for n in cfg.newsletters] == ["digest"]


def _summary(cfg: configuration.Config, r: pipeline.RunReport, idle: str | None) -> str:
    lines = []
    prefix = "dry run: " if r.dry_run else ""
    if r.collect is not None:
        c = r.collect
        lines.append(
            f"{prefix}articles: {c.new} new, {c.updated} updated, {c.unchanged} unchanged, "
            f"{c.skipped} skipped"
            + (f", {c.withdrawn} withdrawn" if c.withdrawn else "")
            + (f", {c.embargoed} embargoed" if c.embargoed else "")
            + (
                ", " + count(len(c.failed_sources), "%(num)s source failed", "%(num)s sources failed")
                if c.failed_sources
                else ""
            )
        )
    if r.files_written or r.files_unchanged:
        lines.append(
            f"{prefix}files: {len(r.files_written)} written, {r.files_unchanged} unchanged in {cfg.output.dir}"
        )
    single = _single_digest(cfg)
    for issue in r.issues:
        held = (
            f"; held for approval (publish issues approve {issue.key}, or skip it)"
            if issue.state == "held"
            else ""
        )
        # the digest's issues are known by their date; a newsletter's by its key and date
        name = f"digest of {issue.key.partition('/')[2]}" if single else f"issue {issue.key}"
        lines.append(
            f"{prefix}{name}: " + count(issue.articles, "%(num)s article", "%(num)s articles") + held
        )
    lines += [f"{prefix}{line}" for line in r.waiting]
    lines += [f"{prefix}check {c.line()}" for c in r.checks]
    d = r.delivery
    if d.sent or d.failed or d.queued or d.skipped or d.elsewhere:
        lines.append(delivered_line(cfg, r))
    lines += d.paused  # mailbox providers this run stopped sending to, one line each
    if idle and not (d.sent or d.failed or d.queued or d.skipped or d.paused or d.elsewhere) and not r.issues:
        lines.append(prefix + idle)
    return "\n".join(lines)


def delivered_line(cfg: configuration.Config, r: pipeline.RunReport) -> str:
    """What delivery did, in one line."""
    d = r.delivery
    where = (
        cfg.delivery.maildir
        if cfg.delivery.transport == "maildir"
        else f"{cfg.delivery.smtp.host}:{cfg.delivery.smtp.port}"
    )
    return (
        f"delivered: {d.sent} sent, {d.queued} queued for retry, {d.failed} failed ({where})"
        + (
            "; "
            + count(d.bounced, "%(num)s address suppressed", "%(num)s addresses suppressed")
            + " as bounced"
            if d.bounced
            else ""
        )
        + (f"; {d.skipped} skipped (unsubscribed meanwhile)" if d.skipped else "")
        # queued deliveries another run's claims hold (publish deliver on other machines)
        + (f"; {d.elsewhere} being sent by another sender of the site" if d.elsewhere else "")
    )


def _newsletter_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--newsletter",
        "newsletters",
        multiple=True,
        metavar="KEY",
        help="Only this newsletter's next issue (repeatable; default: every newsletter).",
    )(func)


def _run_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")(func)
    return click.option("--dry-run", is_flag=True, help="Render everything, send and change nothing.")(func)


@main.command()
@_run_options
@_newsletter_option
@click.option("--no-email", is_flag=True, help="Collect and rebuild feeds, send no digest.")
@click.pass_context
@handles_errors
def now(
    ctx: click.Context, dry_run: bool, as_json: bool, newsletters: tuple[str, ...], no_email: bool
) -> None:
    """Collect, rebuild feeds and pages, send the next issue of each newsletter with something new."""
    steps = (Step.COLLECT, Step.BUILD) if no_email else EVERYTHING
    _run(ctx, steps, pipeline.Options(dry_run=dry_run, newsletters=newsletters), as_json)


@main.command()
@click.option(
    "--workers",
    type=click.IntRange(1, 256),
    default=None,
    metavar="N",
    help="Sender processes (default: delivery.workers, one per core).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
@handles_errors
def deliver(ctx: click.Context, workers: int | None, as_json: bool) -> None:
    """Send the queued mail of every unfinished issue, beside any other sender of the site
    (on a PostgreSQL store, from any number of machines): each reader gets one copy."""
    _run(ctx, (Step.SEND,), pipeline.Options(workers=workers), as_json, "delivered: nothing queued to send")


@main.command()
@_run_options
@click.pass_context
@handles_errors
def collect(ctx: click.Context, dry_run: bool, as_json: bool) -> None:
    """Read the sources into the store."""
    _run(ctx, (Step.COLLECT,), pipeline.Options(dry_run=dry_run), as_json)


@main.command()
@_run_options
@click.pass_context
@handles_errors
def feeds(ctx: click.Context, dry_run: bool, as_json: bool) -> None:
    """Rebuild the feeds and the web edition from the store."""
    _run(ctx, (Step.BUILD,), pipeline.Options(dry_run=dry_run), as_json)


@main.command()
@_run_options
@_newsletter_option
@click.option(
    "--preview",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Write the digest's HTML here; send nothing.",
)
@click.pass_context
@handles_errors
def digest(
    ctx: click.Context, dry_run: bool, as_json: bool, newsletters: tuple[str, ...], preview: str | None
) -> None:
    """Send (or with --preview only preview) the next issue of each newsletter, without
    collecting."""
    steps = (Step.DIGEST, Step.BUILD, Step.SEND)
    options = pipeline.Options(dry_run=dry_run, preview=preview, newsletters=newsletters)
    report = _run(ctx, steps, options, as_json)
    if preview and not as_json:
        click.echo(
            f"preview written to {preview}" if report.digest else f"nothing new: {preview} not written"
        )
