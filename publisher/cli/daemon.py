"""The long-running commands and their dashboard: ``publish run``, ``publish serve``,
``publish status``."""

from __future__ import annotations

import json
import signal
import sys
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING

import click

from publisher.cli.app import handles_errors, load_config, log_format_option, main, site_store
from publisher.cli.newsletters import lines as newsletter_lines
from publisher.i18n import count

if TYPE_CHECKING:
    from publisher.status import StatusReport


@main.command()
@log_format_option
@click.pass_context
@handles_errors
def run(ctx: click.Context, log_format: str) -> None:
    """Run the scheduler: collect and send the digest on the [schedule] timetable.

    Stops cleanly on SIGTERM or SIGINT (the message being sent is finished first)."""
    from publisher import confirmations, logs, scheduler

    logs.configure(log_format)
    cfg = load_config(ctx)
    with confirmations.running(cfg, "publish run"):  # the mails publish serve promised, too
        code = scheduler.run_forever(cfg)
    sys.exit(code)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@click.pass_context
@handles_errors
def status(ctx: click.Context, as_json: bool) -> None:
    """Scheduler state, next and last run of each job, each source's health, counts of
    articles, subscribers, digests and deliveries."""
    from publisher import status as site_status

    cfg = load_config(ctx)
    with site_store(ctx) as store:
        report = site_status.build(cfg, store)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
    else:
        click.echo(_status_text(report, cfg.tz))


def _status_text(report: StatusReport, tz: tzinfo) -> str:
    def local(when: datetime | None, seconds: bool = False) -> str:
        shown = "%Y-%m-%d %H:%M:%S %Z" if seconds else "%Y-%m-%d %H:%M %Z"
        return when.astimezone(tz).strftime(shown) if when else "never"

    holder = report.scheduler
    lines = [f"scheduler: {'running (' + holder + ')' if holder else 'not running'}"]
    for job in report.jobs:
        when = job.next_run.strftime("%Y-%m-%d %H:%M:%S %Z") if job.next_run else "-"
        line = f"  {job.job:8} {job.schedule or 'disabled':14} next: {when}"
        if job.next_run and not holder:
            line += " (when publish run is running)"
        lines.append(line)
        last = job.last
        if last:
            lines.append(
                f"           last: {local(last.started, True)} {last.outcome} in {last.duration:.1f} s: "
                f"{last.detail}"
            )
        else:
            lines.append("           last: never run by the scheduler")
    for s in report.sources:
        seen = count(s.articles, "%(num)s article", "%(num)s articles")
        lines.append(f"source {s.source}: {seen} seen, newest collected {local(s.newest)}")
        if s.read:
            state = "ok" if s.ok else f"FAILING: {s.error}"
            lines.append(
                f"           last read: {local(s.checked)} {state}; last success: {local(s.succeeded)}"
            )
    if report.lock:
        lines.append(f"lock: held by {report.lock}")
    lines.append(f"articles: {report.articles:,} stored, {report.published:,} published")
    lines.append("subscribers: " + ", ".join(f"{v:,} {k}" for k, v in report.subscribers.items()))
    lines.append(f"issues: {report.digests:,}")
    lines.append(f"deliveries: {_delivery_counts(report.deliveries)}")
    width = max((len(d.key) for d in report.recent), default=0)
    for d in report.recent:
        lines.append(f"  {d.key:{width}}  {d.status:8} {_delivery_counts(d.deliveries)}  {d.subject}")
    for n in report.newsletters:
        lines += newsletter_lines(n, tz)
    lines += [f"held for approval: {key} (publish issues approve or skip it)" for key in report.held]
    if report.deliverability is not None:
        lines += report.deliverability.lines()
    return "\n".join(lines)


def _delivery_counts(counts: dict[str, int]) -> str:
    """sent / queued / failed (and skipped when any), in that order."""
    shown = [f"{counts.get(k, 0):,} {k}" for k in ("sent", "queued", "failed")]
    if counts.get("skipped"):
        shown.append(f"{counts['skipped']:,} skipped")
    return ", ".join(shown)


@main.command()
@click.option("--host", default=None, help="Address to listen on (default: [server] host).")
@click.option(
    "--port", type=click.IntRange(1, 65535), default=None, help="Port to listen on (default: [server] port)."
)
@click.option("--scheduler", is_flag=True, help="Also run the [schedule] timetable (as publish run does).")
@click.option("--access-log/--no-access-log", default=True, help="Log one line per request.")
@log_format_option
@click.pass_context
@handles_errors
def serve(
    ctx: click.Context, host: str | None, port: int | None, scheduler: bool, access_log: bool, log_format: str
) -> None:
    """Serve the web edition and feeds; subscribe, confirm and unsubscribe; with
    --scheduler also the timetable of publish run."""
    from publisher import logs, web

    logs.configure(log_format)
    cfg = load_config(ctx)
    site_store(ctx).close()  # a store that cannot be used is one line now, not a failed startup
    handle = None
    if scheduler:
        from publisher.scheduler import start_background, triggers

        triggers(cfg)  # a bad schedule stops here, before anything starts
        handle = start_background(cfg)
    # uvicorn stops on SIGTERM and then raises the signal again: make that a clean exit,
    # after the scheduler (if any) has let its current message finish.
    previous = signal.signal(signal.SIGTERM, _exit_cleanly)
    try:
        web.serve(cfg, host, port, access_log=access_log)
    finally:
        if handle is not None:
            handle.shutdown()
        signal.signal(signal.SIGTERM, previous)


def _exit_cleanly(signum: int, _frame: object) -> None:
    raise SystemExit(0)
