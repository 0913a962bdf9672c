"""The ``publish`` command: a thin click layer over the pipeline.

It reads the configuration, calls one step, prints the report (or ``--json``), and
is the only place that turns errors into messages and exit codes: 2 for bad
configuration or usage, 1 for a failed run.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.utils import quote
from functools import wraps
from pathlib import Path
from typing import Any

import click

from publisher import config as configuration
from publisher import pipeline
from publisher import subscribers as audience
from publisher.errors import PublisherError
from publisher.store import Store
from publisher.text import single_line


def _fail(message: str, code: int) -> None:
    click.echo(f"publish: {message}", err=True)
    sys.exit(code)


def handles_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except PublisherError as exc:
            _fail(str(exc), exc.exit_code)

    return wrapper


@click.group()
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
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


def _config(ctx: click.Context) -> configuration.Config:
    try:
        return configuration.load(ctx.obj)
    except PublisherError as exc:
        _fail(str(exc), exc.exit_code)
        raise  # unreachable


def _run(ctx: click.Context, steps: tuple[str, ...], options: pipeline.Options, as_json: bool) -> None:
    cfg = _config(ctx)
    with _progress_bar() as bars:
        if bars is not None:
            options = dataclasses.replace(options, progress=bars.sending, reading=bars.reading)
        report = pipeline.run(cfg, options, steps=steps)
    if as_json:
        click.echo(json.dumps(_as_dict(report), indent=2, ensure_ascii=False))
    else:
        click.echo(_summary(cfg, report))
    if (
        report.collect
        and report.collect.failed_sources
        and not (report.collect.new or report.collect.unchanged or report.collect.updated)
    ):
        sys.exit(1)
    d = report.delivery
    if d.deferred and not d.sent:  # nothing got through: say why, so cron mails someone
        reason = next((e for e in d.errors if "in a row" not in e), d.errors[0] if d.errors else "")
        _fail(f"no digest was delivered, {d.deferred} stay queued for the next run: {reason}", 1)


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


def _summary(cfg: configuration.Config, r: pipeline.RunReport) -> str:
    lines = []
    prefix = "dry run: " if r.dry_run else ""
    if r.collect is not None:
        c = r.collect
        lines.append(
            f"{prefix}articles: {c.new} new, {c.updated} updated, {c.unchanged} unchanged, "
            f"{c.skipped} skipped"
            + (f", {c.withdrawn} withdrawn" if c.withdrawn else "")
            + (f", {c.embargoed} embargoed" if c.embargoed else "")
            + (f", {len(c.failed_sources)} sources failed" if c.failed_sources else "")
        )
    if r.files_written or r.files_unchanged:
        lines.append(
            f"{prefix}files: {len(r.files_written)} written, {r.files_unchanged} unchanged in {cfg.output.dir}"
        )
    if r.digest:
        lines.append(f"{prefix}digest {r.digest}: {r.digest_articles} articles")
    lines += [f"{prefix}check {c.line()}" for c in r.checks]
    d = r.delivery
    if d.sent or d.failed or d.deferred or d.skipped:
        where = (
            cfg.delivery.maildir
            if cfg.delivery.transport == "maildir"
            else f"{cfg.delivery.smtp.host}:{cfg.delivery.smtp.port}"
        )
        lines.append(
            f"delivered: {d.sent} sent, {d.deferred} queued for retry, {d.failed} failed ({where})"
            + (f"; {d.bounced} addresses suppressed as bounced" if d.bounced else "")
            + (f"; {d.skipped} skipped (unsubscribed meanwhile)" if d.skipped else "")
        )
    elif not r.digest:
        lines.append("digest: nothing new to send")
    return "\n".join(lines)


def _run_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")(func)
    return click.option("--dry-run", is_flag=True, help="Render everything, send and change nothing.")(func)


@main.command()
@_run_options
@click.option("--no-email", is_flag=True, help="Collect and rebuild feeds, send no digest.")
@click.pass_context
@handles_errors
def now(ctx: click.Context, dry_run: bool, as_json: bool, no_email: bool) -> None:
    """Collect, rebuild feeds and pages, send the digest of articles not yet sent."""
    _run(ctx, ("collect", "feeds", "digest"), pipeline.Options(dry_run=dry_run, email=not no_email), as_json)


@main.command()
@_run_options
@click.pass_context
@handles_errors
def collect(ctx: click.Context, dry_run: bool, as_json: bool) -> None:
    """Read the sources into the store."""
    _run(ctx, ("collect",), pipeline.Options(dry_run=dry_run, email=False), as_json)


@main.command()
@_run_options
@click.pass_context
@handles_errors
def feeds(ctx: click.Context, dry_run: bool, as_json: bool) -> None:
    """Rebuild the feeds and the web edition from the store."""
    _run(ctx, ("feeds",), pipeline.Options(dry_run=dry_run, email=False), as_json)


@main.command()
@_run_options
@click.option(
    "--preview", type=click.Path(dir_okay=False), help="Write the digest's HTML here; send nothing."
)
@click.pass_context
@handles_errors
def digest(ctx: click.Context, dry_run: bool, as_json: bool, preview: str | None) -> None:
    """Send the digest of articles not yet sent (no collect)."""
    _run(ctx, ("digest",), pipeline.Options(dry_run=dry_run, preview=preview), as_json)
    if preview:
        click.echo(f"preview written to {preview}")


@main.group()
def subscribers() -> None:
    """Manage who receives the digest."""


def _store(ctx: click.Context) -> Store:
    return Store.open(_config(ctx).store_url)


@subscribers.command("add")
@click.argument("email")
@click.option("--name", default="", help="The subscriber's name.")
@click.option("--resubscribe", is_flag=True, help="Reactivate an unsubscribed or bounced address.")
@click.pass_context
@handles_errors
def subscribers_add(ctx: click.Context, email: str, name: str, resubscribe: bool) -> None:
    """Add an active subscriber."""
    sub, outcome = audience.add(_store(ctx), email, name, resubscribe=resubscribe)
    click.echo(
        {"added": "added", "already": "already subscribed:", "reactivated": "reactivated"}[outcome]
        + f" {sub.email}"
    )


@subscribers.command("remove")
@click.argument("email")
@click.pass_context
@handles_errors
def subscribers_remove(ctx: click.Context, email: str) -> None:
    """Unsubscribe an address (kept, so it is never mailed again by mistake)."""
    sub = audience.remove(_store(ctx), email)
    click.echo(f"unsubscribed {sub.email}")


@subscribers.command("list")
@click.option("--status", type=click.Choice(["pending", "active", "unsubscribed", "bounced"]))
@click.pass_context
@handles_errors
def subscribers_list(ctx: click.Context, status: str | None) -> None:
    """List subscribers with their status."""
    for s in _store(ctx).subscribers.all(status):
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
        raise audience.UsageError(f"{file}: cannot read: {exc}") from None
    report = audience.import_csv(_store(ctx), text, file, resubscribe=resubscribe)
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
    Exits 0 even for a mail that is no valid request, so the sender gets no bounce."""
    from publisher.signup import Signup, token_in_mail
    from publisher.tokens import signer_for

    cfg = _config(ctx)
    store = _store(ctx)
    token = token_in_mail(sys.stdin.buffer.read())
    if token is None:
        click.echo("ignored: no 'unsubscribe <token>' in the subject", err=True)
        return
    signer = signer_for(cfg.server.secret_env, store.meta.get_or_create_secret)
    found = Signup(cfg, store, signer).unsubscribe(token)
    if found.subscriber is None:
        click.echo(f"ignored: the token is {found.reason}", err=True)
        return
    click.echo(f"unsubscribed {found.subscriber.email}")


@subscribers.command("export")
@click.pass_context
@handles_errors
def subscribers_export(ctx: click.Context) -> None:
    """Write all subscribers as CSV to stdout."""
    click.echo(audience.export_csv(_store(ctx).subscribers.all()), nl=False)


_log_format = click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    help="Log lines on stderr: text with timestamps, or JSON lines for log collectors.",
)


@main.command()
@_log_format
@click.pass_context
@handles_errors
def run(ctx: click.Context, log_format: str) -> None:
    """Run the scheduler: collect and send the digest on the [schedule] timetable.

    Stops cleanly on SIGTERM or SIGINT (the message being sent is finished first)."""
    from publisher import logs, scheduler

    logs.configure(log_format)
    sys.exit(scheduler.run_forever(_config(ctx)))


@main.command()
@click.pass_context
@handles_errors
def status(ctx: click.Context) -> None:
    """Last runs, next scheduled runs, counts of articles, subscribers and deliveries."""
    from datetime import UTC, datetime

    from publisher import scheduler

    cfg = _config(ctx)
    store = _store(ctx)
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
        click.echo(f"source {source}: {seen} articles seen, newest collected {local(newest)}")
        h = health.get(source)
        if h is not None:
            state = "ok" if h.ok else f"FAILING: {h.error}"
            click.echo(
                f"           last read: {local(h.checked)} {state}; last success: {local(h.succeeded)}"
            )
    held = store.meta.lease_holder("publish")
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
@_log_format
@click.pass_context
@handles_errors
def serve(
    ctx: click.Context, host: str | None, port: int | None, scheduler: bool, access_log: bool, log_format: str
) -> None:
    """Serve the web edition and feeds; subscribe, confirm and unsubscribe."""
    from publisher import logs, web

    logs.configure(log_format)
    cfg = _config(ctx)
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


EXAMPLE_ARTICLE = """\
+++
title = "Welcome to your new publication"
published = {published}
authors = ["The Editors"]
tags = ["News"]
+++
This is an example article. Put your articles in `articles/` as Markdown with
front matter like this one, or as plain-text exports, then run `publish now`.
"""

INIT_CONFIG = """\
[site]
title = {title}
description = {description}
base_url = "http://127.0.0.1:8000/"
language = "en"
timezone = "UTC"

[[sources]]
type = "directory"
path = "articles"

[digest]
from = {sender}
postal_address = "Street, City, Country"
"""


@main.command()
@click.argument("directory", type=click.Path(file_okay=False), default=".")
@click.option("--title", default="My Newsroom", help="The publication's name.")
@click.option("--templates", "copy_templates", is_flag=True, help="Copy the default theme to customise it.")
@handles_errors
def init(directory: str, title: str, copy_templates: bool) -> None:
    """Create a new site folder with config.toml and an example article."""
    from datetime import UTC, datetime

    from publisher.render import default_templates

    root = Path(directory)
    cfg = root / "config.toml"
    if cfg.exists():
        raise audience.UsageError(f"{cfg} already exists; not overwriting it")
    (root / "articles").mkdir(parents=True, exist_ok=True)

    def toml(text: str) -> str:  # a JSON string is a valid TOML basic string
        return json.dumps(text, ensure_ascii=False)

    title = single_line(title) or "My Newsroom"
    sender = f'"{quote(title)}" <digest@example.com>'
    cfg.write_text(
        INIT_CONFIG.format(title=toml(title), description=toml(f"News from {title}"), sender=toml(sender)),
        encoding="utf-8",
    )
    stamp = datetime.now(UTC).replace(microsecond=0).isoformat()
    (root / "articles" / "welcome.md").write_text(EXAMPLE_ARTICLE.format(published=stamp), encoding="utf-8")
    if copy_templates:
        shutil.copytree(default_templates(), root / "templates", dirs_exist_ok=False)
    click.echo(f"created {cfg}; next: cd {root} && publish subscribers add you@example.com && publish now")
