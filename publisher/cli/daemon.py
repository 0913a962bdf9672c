"""The long-running commands and their dashboard: ``publish run``, ``publish serve``,
``publish status``."""

from __future__ import annotations

import signal
import sys

import click

from publisher.cli.app import handles_errors, load_config, log_format_option, main, site_store
from publisher.i18n import count
from publisher.locks import SITE_LOCK


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
@click.pass_context
@handles_errors
def status(ctx: click.Context) -> None:
    """Last runs, next scheduled runs, counts of articles, subscribers and deliveries."""
    from datetime import UTC, datetime

    from publisher import scheduler

    cfg = load_config(ctx)
    store = site_store(ctx)
    holder = scheduler.scheduler_holder(store)
    click.echo(f"scheduler: {'running (' + holder + ')' if holder else 'not running'}")
    runs = {r.job: r for r in store.runs.last()}
    for plan in scheduler.timetable(cfg, store):
        when = plan.next_run.strftime("%Y-%m-%d %H:%M:%S %Z") if plan.next_run else "-"
        line = f"  {plan.job:8} {plan.schedule or 'disabled':14} next: {when}"
        if plan.next_run and not holder:
            line += " (when publish run is running)"
        click.echo(line)
        last = runs.get(plan.job)
        if last:
            started = last.started.astimezone(cfg.tz).strftime("%Y-%m-%d %H:%M:%S %Z")
            click.echo(f"           last: {started} {last.outcome} in {last.duration:.1f} s: {last.detail}")
        else:
            click.echo("           last: never run by the scheduler")

    def local(when: datetime | None) -> str:
        return when.astimezone(cfg.tz).strftime("%Y-%m-%d %H:%M %Z") if when else "never"

    seen_by_source = store.articles.per_source()
    health = {s.source: s for s in store.sources.all()}
    for source in sorted(set(seen_by_source) | set(health)):
        seen, newest = seen_by_source.get(source, (0, None))
        seen_text = count(seen, "%(num)s article", "%(num)s articles")
        click.echo(f"source {source}: {seen_text} seen, newest collected {local(newest)}")
        h = health.get(source)
        if h is not None:
            state = "ok" if h.ok else f"FAILING: {h.error}"
            click.echo(
                f"           last read: {local(h.checked)} {state}; last success: {local(h.succeeded)}"
            )
    held = store.meta.lock_holder(SITE_LOCK)
    if held:
        click.echo(f"lock: held by {held[0]}")
    counts = store.articles.counts(datetime.now(UTC))
    subs = store.subscribers.counts()
    deliveries = store.ledger.delivery_counts()
    click.echo(f"articles: {counts['articles']} stored, {counts['published']} published")
    click.echo("subscribers: " + ", ".join(f"{v} {k}" for k, v in subs.items()))
    click.echo(f"digests: {counts['digests']}")
    click.echo(f"deliveries: {_delivery_counts(deliveries)}")
    for d in store.ledger.all_digests()[:5]:
        click.echo(
            f"  {d.key}  {d.status:8} {_delivery_counts(store.ledger.delivery_counts(d.id))}  {d.subject}"
        )


def _delivery_counts(counts: dict[str, int]) -> str:
    """sent / queued / failed (and skipped when any), in that order."""
    shown = [f"{counts.get(k, 0)} {k}" for k in ("sent", "queued", "failed")]
    if counts.get("skipped"):
        shown.append(f"{counts['skipped']} skipped")
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
    """Serve the web edition and feeds; subscribe, confirm and unsubscribe."""
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
