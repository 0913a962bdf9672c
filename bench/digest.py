"""The email digest at scale: render once, personalise cheaply, send fast, stay small.

    python bench/digest.py [--recipients 10000] [--connections 4] [--rounds 3] [--skip-smtp] [--skip-rss]
                           [--skip-newsletters] [--newsletter-readers 50000]

Prints a table of ratios from one run:

1. personalise: the per-recipient step (signed unsubscribe token + placeholders +
   quoted-printable + headers) against one full render + premailer of the same
   digest (goal >= 500x cheaper), and the personalised bytes identical to a full
   per-recipient render for a sample of recipients.
2. smtp: sending the digest to ``--recipients`` subscribers through the real
   pipeline (ledger, workers, SMTP) into postfix's smtp-sink on loopback, against
   ``smtp-source -d`` pushing the same count and size over the same number of
   connections (goal >= 0.5).
3. rss: peak RSS of a process sending to 50,000 subscribers against 5,000
   (goal: ratio <= 1.1, under 120 MB).
4. newsletters: 50,000 subscribers over 4 newsletters with 8 distinct choices of
   sections, one process making every issue and sending it into smtp-sink: renders
   counted (goal: <= newsletters + choices, never per reader), the per-recipient cost
   of a newsletter's message (two signed links: unsubscribe from it, preferences),
   peak RSS (goal < 120 MB).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from publisher import config as configuration  # noqa: E402
from publisher import digest as digests  # noqa: E402
from publisher import pipeline  # noqa: E402
from publisher.links import Links  # noqa: E402
from publisher.mail import MessageTemplate, Recipient  # noqa: E402
from publisher.messages import Messages  # noqa: E402
from publisher.models import DigestRecord, Subscriber  # noqa: E402
from publisher.store import Store  # noqa: E402

SUMMARY = (
    "Seoul city officials said on Tuesday that the new service would begin next month, after a trial "
    "that ran through the spring on three lines of the subway network, and that fares would not change."
)
CATEGORIES = ["Politics", "Business", "Culture", "Sports", "National"]


def make_site(folder: Path, port: int = 25, connections: int = 4) -> configuration.Config:
    """A site with 25 articles (a full digest shows 20) delivering over SMTP."""
    folder.mkdir(parents=True)
    seeds = folder / "seeds"
    seeds.mkdir()
    for i in range(25):
        (seeds / f"{i:03}.md").write_text(
            f'+++\ntitle = "Story {i}: the city, its subway and the people who ride it 서울"\n'
            f"published = 2025-05-{1 + i:02}T08:00:00+09:00\n"
            f'authors = ["Reporter {i}", "Kim Min-ji"]\ntags = ["{CATEGORIES[i % 5]}"]\n'
            f'summary = "{SUMMARY[: 120 + i * 6]}"\n+++\nBody {i}.\n',
            encoding="utf-8",
        )
    text = (
        (ROOT / "config.toml")
        .read_text(encoding="utf-8")
        .replace(
            'transport = "maildir"\nmaildir = "outbox"\n',
            'transport = "smtp"\nretry_delay = 0.1\n'
            f'[delivery.smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\nconnections = {connections}\n',
        )
    )
    (folder / "config.toml").write_text(text, encoding="utf-8")
    config = configuration.load(folder / "config.toml")
    pipeline.run(config, pipeline.Options(), [pipeline.Step.COLLECT])
    return config


def queue_digest(config: configuration.Config, recipients: int) -> None:
    """``recipients`` active subscribers and one digest queued for all of them."""
    now = datetime.now(UTC)
    store = Store.open(config.store_url)
    try:
        store.subscribers.add_many(
            ((f"reader{i:06}@example.com", f"Reader {i}") for i in range(recipients)), "active", now
        )
        pipeline.prepare_digest(config, store, now, pipeline.Options(), pipeline.RunReport())
    finally:
        store.close()


def bench_personalise(folder: Path, recipients: int) -> list[tuple[str, str, str]]:
    config = make_site(folder)
    store = Store.open(config.store_url)
    now = datetime.now(UTC)
    selection = digests.select(store.articles.not_yet_in_digest(now), config.digest.max_articles)
    renders = []
    for _ in range(5):
        t0 = time.perf_counter()
        rendered = digests.render(config, selection, "2025-05-27", now)
        renders.append(time.perf_counter() - t0)
    full = statistics.median(renders)
    record = DigestRecord(1, "2025-05-27", now, rendered.subject, "sending", rendered.html, rendered.text)
    make = Messages.for_site(config, store).digest(record)
    subs = [Subscriber(i, f"{i:024x}", f"reader{i:06}@example.com", f"Reader {i}") for i in range(recipients)]
    t0 = time.perf_counter()
    size = 0
    for sub in subs:
        size += len(make(sub))
    per = (time.perf_counter() - t0) / recipients

    # identical bytes: a full render with the recipient's own values, same headers
    links = Links(config.site.base_url)
    common = dict(sender=config.digest.from_, subject=rendered.subject, date=now, list_id="L <l.example.com>")
    shared = MessageTemplate.build(html_body=rendered.html, text_body=rendered.text, **common)
    sample = [subs[0], subs[recipients // 2], subs[-1]]
    same = 0
    for sub in sample:
        url = links.url(f"unsubscribe/token-{sub.public_id}")
        to = Recipient(sub.email, sub.name, url, "mailto:d@example.com", f"<{sub.public_id}@x>")
        own = digests.render(config, selection, "2025-05-27", now, unsubscribe_url=url, recipient=sub.email)
        reference = MessageTemplate.build(html_body=own.html, text_body=own.text, **common).personalise(to)
        same += shared.personalise(to) == reference
    store.close()
    return [
        ("full render + premailer", f"{full * 1000:.1f} ms", "once per digest"),
        ("personalise one recipient", f"{per * 1e6:.1f} µs", f"{size / recipients / 1024:.1f} KB/message"),
        (
            f"{recipients:,} recipients in all",
            f"{(full + per * recipients):.2f} s",
            "one render + every copy",
        ),
        ("personalise vs full render", f"{full / per:.0f}x cheaper", "goal >= 500x"),
        ("bytes equal a full render", f"{same}/{len(sample)} recipients", "goal: all"),
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_sink(port: int) -> subprocess.Popen[bytes]:
    sink = subprocess.Popen(
        [shutil.which("smtp-sink") or "/usr/sbin/smtp-sink", "-u", "nobody", f"127.0.0.1:{port}", "256"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return sink
        except OSError:
            time.sleep(0.05)
    raise SystemExit("smtp-sink did not start")


def bench_smtp(folder: Path, recipients: int, connections: int, rounds: int) -> list[tuple[str, str, str]]:
    """Both sides ``rounds`` times, alternating, best of each (the machine is shared)."""
    port = free_port()
    sink = start_sink(port)
    ours, reference = [], []
    try:
        config = make_site(folder, port, connections)
        queue_digest(config, recipients)
        store = Store.open(config.store_url)
        [record] = store.ledger.all_digests()
        sample = Messages.for_site(config, store).digest(record)(store.subscribers.all()[0])
        for n in range(rounds):
            if n:  # the same digest again, queued for everyone
                store.ledger.create_digest(
                    f"bench-{n}", record.subject, record.html, record.text, [], record.created
                )
            report = pipeline.RunReport()
            t0 = time.perf_counter()
            pipeline.deliver(config, store, report)
            ours.append(time.perf_counter() - t0)
            if report.delivery.sent != recipients:
                raise SystemExit(
                    f"only {report.delivery.sent} of {recipients} sent: {report.delivery.errors[:3]}"
                )
            t0 = time.perf_counter()
            subprocess.run(
                [
                    shutil.which("smtp-source") or "/usr/sbin/smtp-source",
                    "-d",
                    "-s",
                    str(connections),
                    "-m",
                    str(recipients),
                    "-l",
                    str(len(sample)),
                    "-f",
                    "digest@news.example.com",
                    "-t",
                    "reader@example.com",
                    f"127.0.0.1:{port}",
                ],
                check=True,
            )
            reference.append(time.perf_counter() - t0)
        store.close()
    finally:
        sink.send_signal(signal.SIGTERM)
        sink.wait()
    best, ref = min(ours), min(reference)
    return [
        (
            f"smtp-source -d, {connections} connections",
            f"{recipients / ref:.0f} msg/s",
            f"{len(sample)} bytes",
        ),
        (f"publisher, {connections} connections", f"{recipients / best:.0f} msg/s", "ledger + render + SMTP"),
        ("publisher vs smtp-source", f"{ref / best:.2f}", f"goal >= 0.5 (best of {rounds} each)"),
    ]


def peak_rss(folder: Path, recipients: int, port: int) -> float:
    """The sending process's own peak (VmHWM: ru_maxrss would include the parent's
    memory, which a forked child inherits across exec)."""
    config = make_site(folder, port)
    queue_digest(config, recipients)
    result = subprocess.run(
        [sys.executable, __file__, "--child-send", str(folder / "config.toml")],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise SystemExit(f"the sending process failed: {result.stderr[-2000:]}")
    return int(result.stdout.split()[-1]) / 1024


def bench_rss(folder: Path) -> list[tuple[str, str, str]]:
    port = free_port()
    sink = start_sink(port)
    try:
        small = peak_rss(folder / "small", 5_000, port)
        large = peak_rss(folder / "large", 50_000, port)
    finally:
        sink.send_signal(signal.SIGTERM)
        sink.wait()
    return [
        ("peak RSS, 5,000 subscribers", f"{small:.1f} MB", ""),
        ("peak RSS, 50,000 subscribers", f"{large:.1f} MB", "goal < 120 MB"),
        ("50,000 vs 5,000", f"{large / small:.2f}", "goal <= 1.1"),
    ]


# Four newsletters; readers of three may narrow them (8 distinct choices in all).
NEWSLETTERS = """
[[newsletters]]
key = "daily"
title = "The Daily"
sections = []
reader_sections = true

[[newsletters]]
key = "money"
title = "Money and Power"
sections = ["Business", "Politics"]
reader_sections = true

[[newsletters]]
key = "weekend"
title = "The Weekend"
sections = ["Culture", "Sports"]
reader_sections = true

[[newsletters]]
key = "national"
title = "National"
sections = ["National"]
"""
CHOICES = {  # newsletter -> the narrower choices its readers make (besides "everything")
    "daily": ['["business"]', '["culture","sports"]', '["politics"]', '["national","sports"]'],
    "money": ['["business"]', '["politics"]'],
    "weekend": ['["culture"]', '["sports"]'],
}


def newsletters_of(i: int) -> dict[str, str]:
    """Reader i's subscriptions: {newsletter: their sections}."""
    chosen = {"daily": "[]"}
    if i % 2:
        chosen["money"] = "[]"
    if i % 3 == 0:
        chosen["weekend"] = "[]"
    if i % 5 == 0:
        chosen["national"] = "[]"
    for key, options in CHOICES.items():
        if key in chosen and i % 3 != 1:  # a third keep everything
            chosen[key] = options[(i // 7) % len(options)]
    return chosen


def queue_newsletters(folder: Path, port: int, recipients: int) -> tuple[configuration.Config, int]:
    """A site with NEWSLETTERS and ``recipients`` readers subscribed as ``newsletters_of`` says."""
    from sqlalchemy import delete, insert

    from publisher.store.schema import subscriptions

    config = make_site(folder, port)
    cfg = folder / "config.toml"
    single = re.sub(r"(?m)^(subject|max_articles|digest) = .*\n", "", cfg.read_text(encoding="utf-8"))
    cfg.write_text(single + NEWSLETTERS, encoding="utf-8")  # each newsletter has its own
    config = configuration.load(cfg)
    now = datetime.now(UTC)
    store = Store.open(config.store_url)
    try:
        store.subscribers.add_many(
            ((f"reader{i:06}@example.com", f"Reader {i}") for i in range(recipients)), "active", now
        )
        ids = sorted(s.id for s in store.subscribers.all())
        rows = [
            {"subscriber_id": sid, "newsletter": key, "status": "active", "sections": sections}
            | {"created": now, "changed": now}
            for i, sid in enumerate(ids)
            for key, sections in newsletters_of(i).items()
        ]
        with store.engine.begin() as conn:
            conn.execute(delete(subscriptions))
            conn.execute(insert(subscriptions), rows)
    finally:
        store.close()
    return config, len(rows)


def bench_newsletters(folder: Path, recipients: int) -> list[tuple[str, str, str]]:
    port = free_port()
    sink = start_sink(port)
    try:
        config, subscriptions = queue_newsletters(folder, port, recipients)
        result = subprocess.run(
            [sys.executable, __file__, "--child-newsletters", str(folder / "config.toml")],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
        )
    finally:
        sink.send_signal(signal.SIGTERM)
        sink.wait()
    if result.returncode != 0:
        raise SystemExit(f"the sending process failed: {result.stderr[-2000:]}")
    got = dict(line.split("=", 1) for line in result.stdout.split())
    choices = sum(len(v) for v in CHOICES.values())
    renditions, renders = int(got["renditions"]), int(got["renders"])
    return [
        (
            f"{recipients:,} readers, {subscriptions:,} subscriptions",
            f"{int(got['sent']):,} sent",
            f"4 newsletters, {choices} distinct choices",
        ),
        ("renditions (issues + choices)", f"{renditions}", f"goal <= {4 + choices}: never per reader"),
        ("template renders", f"{renders}", "each rendition once (more only to fit Gmail's clip)"),
        ("make every issue", f"{float(got['prepare']):.2f} s", "select, render, queue every delivery"),
        (
            "personalise one newsletter message",
            f"{float(got['personalise']) * 1e6:.1f} µs",
            "two signed links",
        ),
        ("send", f"{int(got['sent']) / float(got['deliver']):.0f} msg/s", "into smtp-sink, 4 connections"),
        ("peak RSS, make and send all", f"{int(got['rss']) / 1024:.1f} MB", "goal < 120 MB"),
    ]


def child_newsletters(config_path: str) -> None:
    config = configuration.load(config_path)
    counted = {"renders": 0}
    render = digests.render

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        counted["renders"] += 1
        return render(*args, **kwargs)

    digests.render = counting  # type: ignore[assignment]
    store = Store.open(config.store_url)
    report = pipeline.RunReport()
    now = datetime.now(UTC)
    t0 = time.perf_counter()
    pipeline.prepare_digest(config, store, now, pipeline.Options(), report)
    prepare = time.perf_counter() - t0
    [record] = [d for d in store.ledger.all_digests() if d.newsletter == "daily"]
    make = Messages.for_site(config, store).digest(record, "daily", "The Daily")
    subs = [Subscriber(i, f"{i:024x}", f"reader{i:06}@example.com", f"Reader {i}") for i in range(2000)]
    t0 = time.perf_counter()
    for sub in subs:
        make(sub)
    personalise = (time.perf_counter() - t0) / len(subs)
    t0 = time.perf_counter()
    pipeline.deliver(config, store, report)
    deliver = time.perf_counter() - t0
    store.close()
    if report.delivery.queued or report.delivery.failed:
        raise SystemExit(f"not all sent: {report.delivery.errors[:3]}")
    status = Path("/proc/self/status").read_text()
    rss = re.search(r"VmHWM:\s+(\d+) kB", status).group(1)  # type: ignore[union-attr]
    print(f"renditions={sum(i.renditions for i in report.issues)} renders={counted['renders']}")
    print(
        f"prepare={prepare} personalise={personalise} deliver={deliver} sent={report.delivery.sent} rss={rss}"
    )


def child_send(config_path: str) -> None:
    config = configuration.load(config_path)
    store = Store.open(config.store_url)
    report = pipeline.RunReport()
    pipeline.deliver(config, store, report)
    store.close()
    if report.delivery.queued or report.delivery.failed:
        raise SystemExit(f"not all sent: {report.delivery.errors[:3]}")
    status = Path("/proc/self/status").read_text()
    print(re.search(r"VmHWM:\s+(\d+) kB", status).group(1))  # type: ignore[union-attr]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3, help="SMTP rounds per side (best counts)")
    parser.add_argument("--skip-smtp", action="store_true")
    parser.add_argument("--skip-rss", action="store_true")
    parser.add_argument("--skip-newsletters", action="store_true")
    parser.add_argument("--newsletter-readers", type=int, default=50_000)
    parser.add_argument("--child-send", help=argparse.SUPPRESS)
    parser.add_argument("--child-newsletters", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_send:
        child_send(args.child_send)
        return
    if args.child_newsletters:
        child_newsletters(args.child_newsletters)
        return
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="bench-digest-") as tmp:
        rows += bench_personalise(Path(tmp) / "render", args.recipients)
        if not args.skip_smtp:
            rows += bench_smtp(Path(tmp) / "smtp", args.recipients, args.connections, args.rounds)
        if not args.skip_rss:
            rows += bench_rss(Path(tmp) / "rss")
        if not args.skip_newsletters:
            rows += bench_newsletters(Path(tmp) / "newsletters", args.newsletter_readers)
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'result':>20}  note")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>20}  {note}")


if __name__ == "__main__":
    main()
