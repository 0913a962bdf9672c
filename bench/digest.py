"""The email digest at scale: render once, personalise cheaply, send fast, stay small.

    python bench/digest.py [--recipients 10000] [--subscribers 10000,50000] [--stores sqlite,postgresql]
                           [--connections 4] [--workers 1,2] [--repeat 1] [--skip-smtp] [--skip-rss]
                           [--skip-newsletters] [--newsletter-readers 50000]

Prints the machine's load average at start and end (it is shared) and tables of ratios
from one run:

1. personalise: the per-recipient step (signed unsubscribe token + placeholders +
   quoted-printable + headers) against one full render + premailer of the same
   digest (goal >= 500x cheaper), and the personalised bytes identical to a full
   per-recipient render for a sample of recipients.
2. smtp: for each store (SQLite; PostgreSQL in a throwaway cluster), list size and
   ``delivery.workers`` value, a fresh site and ``publish -v now`` as a process (what a
   user runs: collect, feeds, the issue, its deliveries, the send) into postfix's
   smtp-sink on loopback, against ``smtp-source -d`` pushing the same count of
   messages of the same size over the same number of connections into the same sink
   (goal: ratio >= 0.5, stretch 0.7). Needs smtp-sink/smtp-source (``apt-get install
   postfix``) and PostgreSQL's server binaries (tests/install.sh).
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
import compileall
import ctypes
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, fields, replace
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
from tests import pg  # noqa: E402  (a throwaway PostgreSQL cluster)

SUMMARY = (
    "Seoul city officials said on Tuesday that the new service would begin next month, after a trial "
    "that ran through the spring on three lines of the subway network, and that fares would not change."
)
CATEGORIES = ["Politics", "Business", "Culture", "Sports", "National"]


def make_site(
    folder: Path, port: int = 25, connections: int = 4, store_url: str = "", workers: int = 0
) -> configuration.Config:
    """A site with 25 articles (a full digest shows 20) delivering over SMTP; ``store_url``:
    a store other than its SQLite file; ``workers``: ``delivery.workers`` (0: its default)."""
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
            + (f"workers = {workers}\n" if workers else "")
            + f'[delivery.smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\nconnections = {connections}\n',
        )
    )
    if store_url:
        text = text.replace('url = "sqlite:///publisher.db"', f'url = "{store_url}"')
    (folder / "config.toml").write_text(text, encoding="utf-8")
    config = configuration.load(folder / "config.toml")
    pipeline.run(config, pipeline.Options(), [pipeline.Step.COLLECT])
    return config


def add_readers(config: configuration.Config, recipients: int) -> None:
    """``recipients`` active subscribers, each subscribed to the site's newsletter."""
    now = datetime.now(UTC)
    with Store.open(config.store_url) as store:
        store.subscribers.add_many(
            ((f"reader{i:06}@example.com", f"Reader {i}") for i in range(recipients)), "active", now
        )
        keys = [n.key for n in config.newsletters]
        for batch in store.subscribers.batches(10_000):
            store.subscriptions.add_many({s.id: {k: [] for k in keys} for s in batch}, "active", now)


def queue_digest(config: configuration.Config, recipients: int) -> None:
    """``recipients`` active readers and one digest queued for all of them."""
    add_readers(config, recipients)
    with Store.open(config.store_url) as store:
        pipeline.prepare_digest(config, store, datetime.now(UTC), pipeline.Options(), pipeline.RunReport())


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


@dataclass
class SmtpRow:
    store: str
    subscribers: int
    workers: str  # "default" when delivery.workers is not set
    connections: int  # over all sender processes, the same for smtp-source
    size: int  # bytes of one message
    publish: float  # seconds of the whole `publish now` process
    send: float  # msg/s between the process's first and last progress lines ("-": not measurable)
    cpu: float  # CPU seconds of the process (user + system, with its sender processes)
    reference: float  # seconds of smtp-source -d for the same count (the better of two)

    def cells(self) -> list[str]:
        ours, limit = self.subscribers / self.publish, self.subscribers / self.reference
        return [
            self.store,
            f"{self.subscribers:,}",
            self.workers,
            str(self.connections),
            f"{self.size / 1024:.1f} KB",
            f"{self.publish:.1f} s",
            f"{ours:,.0f}",
            f"{self.send:,.0f}" if self.send else "-",
            f"{self.cpu / self.subscribers * 1e6:,.0f} µs",
            f"{limit:,.0f}",
            f"{ours / limit:.2f}",
            f"{self.send / limit:.2f}" if self.send else "-",
        ]


SMTP_HEADER = [
    "store",
    "subscribers",
    "workers",
    "conns",
    "message",
    "publish now",
    "msg/s",
    "send msg/s",
    "CPU/msg",
    "smtp-source msg/s",
    "ratio",
    "send ratio",
]
_PR_SET_CHILD_SUBREAPER = 36  # prctl(2)
PROGRESS = re.compile(r"(\d+) of (\d+) deliveries done")


def run_publish_now(folder: Path, processes: int) -> tuple[float, float, float, str]:
    """``publish -v now`` as a process: (its wall time, the msg/s between its first and
    last progress lines, 0 when ``processes`` send (each prints its own count), its CPU
    seconds with every process it started, its stdout). Progress lines are timed as
    they arrive."""
    cmd = [sys.executable, "-m", "publisher", "--config", str(folder / "config.toml"), "-v", "now"]
    staying = tuple(children())  # the sink, a PostgreSQL server: not the run's
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        cwd=folder,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    marks: list[tuple[float, int, int]] = []
    errors: list[str] = []
    assert proc.stderr is not None and proc.stdout is not None
    for line in proc.stderr:
        found = PROGRESS.search(line)
        if found:
            marks.append((time.perf_counter(), int(found[1]), int(found[2])))
        elif not line.startswith("INFO"):
            errors.append(line)
    out = proc.stdout.read()
    code = proc.wait()
    wall = time.perf_counter() - t0
    reap_orphans(staying)  # the fork server its senders came from, multiprocessing's resource tracker
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if code != 0:
        raise SystemExit(f"publish now failed ({code}): {''.join(errors)[-2000:]}")
    send = 0.0
    if processes == 1 and len(marks) >= 2:
        (t1, done1, _), (t2, done2, _) = marks[0], marks[-1]
        send = (done2 - done1) / (t2 - t1) if t2 > t1 else 0.0
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall, send, cpu, out


def adopt_orphans() -> None:
    """Linux: processes a measured process leaves behind (its sender processes' fork
    server) become this process's children when it ends, so their CPU time is counted
    once they are reaped (``reap_orphans``)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1)
    except (OSError, AttributeError):
        pass


def reap_orphans(keep: tuple[int, ...]) -> None:
    """Wait for every child of this process but ``keep`` to end."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        mine = [p for p in children() if p not in keep]
        if not mine:
            return
        for pid in mine:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
        time.sleep(0.02)


def children() -> list[int]:
    me, found = os.getpid(), []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields_ = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields_[1]) == me:
                found.append(int(entry))
    return found


def message_size(config: configuration.Config) -> int:
    """Bytes of one reader's message of the site's last issue, as the run built it."""
    with Store.open(config.store_url) as store:
        [record] = store.ledger.all_digests()
        parts = store.ledger.parts(record.id)
        shown = (
            replace(record, subject=parts[0].subject, html=parts[0].html, text=parts[0].text)
            if parts
            else record
        )
        reader = next(iter(store.subscribers.batches(1)))[0]
        return len(Messages.for_site(config, store).digest(shown, record.newsletter)(reader))


def smtp_source(port: int, connections: int, count: int, size: int) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [
            shutil.which("smtp-source") or "/usr/sbin/smtp-source",
            *("-d", "-s", str(connections), "-m", str(count), "-l", str(size)),
            *("-f", "digest@news.example.com", "-t", "reader@example.com", f"127.0.0.1:{port}"),
        ],
        check=True,
    )
    return time.perf_counter() - t0


def bench_smtp(
    folder: Path, sizes: list[int], stores: list[str], connections: int, workers: list[int], repeat: int = 1
) -> list[SmtpRow]:
    """For each store, list size and ``delivery.workers``: a fresh site, ``publish now``
    as a process sending the issue to every reader into smtp-sink (``repeat`` times, each
    on a copy of the same fresh site: the median run counts), and smtp-source -d pushing
    as many messages of the same size over as many connections into the same sink right
    after, twice (the faster counts: the machine is shared)."""
    if "postgresql" in stores and not (pg.PG_BIN / "initdb").is_file():
        raise SystemExit(
            f"PostgreSQL's server binaries are not in {pg.PG_BIN} (set PG_BIN, apt-get install postgresql, "
            "or --stores sqlite)"
        )
    port = free_port()
    sink = start_sink(port)
    rows: list[SmtpRow] = []
    print("  ".join(SMTP_HEADER), flush=True)  # each row as it is measured; the table at the end
    try:
        with ExitStack() as stack:
            for store in stores:
                server = stack.enter_context(pg.cluster()) if store == "postgresql" else None
                for count in sizes:
                    for w in workers:
                        site = folder / f"{store}-{count}-{w}"
                        url = server.createdb() if server is not None else ""
                        config = make_site(site, port, connections, url, w)
                        add_readers(config, count)
                        total = connections * (w or 1)
                        runs = []
                        for i in range(repeat):
                            here = copy_site(site, f"run{i}", server) if repeat > 1 else site
                            runs.append(run_publish_now(here, w or os.cpu_count() or 1))
                            if f"delivered: {count} sent" not in runs[-1][3]:
                                raise SystemExit(f"not all sent: {runs[-1][3][-1000:]}")
                        wall, send, cpu, _ = sorted(runs)[len(runs) // 2]  # the median run
                        size = message_size(
                            config if repeat == 1 else configuration.load(here / "config.toml")
                        )
                        reference = min(smtp_source(port, total, count, size) for _ in range(2))
                        row = SmtpRow(
                            store, count, str(w or "default"), total, size, wall, send, cpu, reference
                        )
                        print("  ".join(row.cells()), flush=True)
                        rows.append(row)
    finally:
        sink.send_signal(signal.SIGTERM)
        sink.wait()
    return rows


def copy_site(site: Path, name: str, server: pg.Server | None) -> Path:
    """A copy of ``site`` (its folder; on PostgreSQL its database too, made from the
    site's as a template) next to it, as ``name``."""
    copy = site.parent / f"{site.name}-{name}"
    shutil.copytree(site, copy)
    if server is not None:
        cfg = copy / "config.toml"
        url = configuration.load(cfg).store_url
        database = f"{url.rsplit('/', 1)[1]}_{name}"
        server.tool("createdb", "-T", url.rsplit("/", 1)[1], database)
        cfg.write_text(cfg.read_text().replace(url, f"{url.rsplit('/', 1)[0]}/{database}"))
    return copy


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
    parser.add_argument("--recipients", type=int, default=10_000, help="for personalise")
    parser.add_argument("--subscribers", default="10000,50000", help="list sizes of the smtp part")
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--connections", type=int, default=4, help="delivery.smtp.connections")
    parser.add_argument(
        "--workers", default="1,2", help="delivery.workers values (0: leave the key out, its default)"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="publish now runs per smtp row (the median counts)"
    )
    parser.add_argument("--skip-smtp", action="store_true")
    parser.add_argument("--skip-rss", action="store_true")
    parser.add_argument("--skip-newsletters", action="store_true")
    parser.add_argument("--newsletter-readers", type=int, default=50_000)
    parser.add_argument("--child-send", help=argparse.SUPPRESS)
    parser.add_argument("--child-newsletters", help=argparse.SUPPRESS)
    args = parser.parse_args()
    adopt_orphans()
    if sys.dont_write_bytecode:  # as installed: every publish process reads compiled modules
        compileall.compile_dir(ROOT / "publisher", quiet=1)
    if args.child_send:
        child_send(args.child_send)
        return
    if args.child_newsletters:
        child_newsletters(args.child_newsletters)
        return
    print(f"load average at start: {load()}  ({os.cpu_count()} cores)", flush=True)
    rows: list[tuple[str, str, str]] = []
    smtp: list[SmtpRow] = []
    with tempfile.TemporaryDirectory(prefix="bench-digest-") as tmp:
        rows += bench_personalise(Path(tmp) / "render", args.recipients)
        if not args.skip_smtp:
            smtp = bench_smtp(
                Path(tmp) / "smtp",
                [int(n) for n in args.subscribers.split(",")],
                args.stores.split(","),
                args.connections,
                workers_to_try([int(n) for n in args.workers.split(",")]),
                args.repeat,
            )
        if not args.skip_rss:
            rows += bench_rss(Path(tmp) / "rss")
        if not args.skip_newsletters:
            rows += bench_newsletters(Path(tmp) / "newsletters", args.newsletter_readers)
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'result':>20}  note")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>20}  {note}")
    if smtp:
        print(SMTP_NOTE)
        table([SMTP_HEADER, *(r.cells() for r in smtp)])
    print(f"load average at end: {load()}")


SMTP_NOTE = """
smtp: `publish -v now` as a process (a fresh site per row: collect, feeds, the issue, its
deliveries, the send) into smtp-sink, against `smtp-source -d` sending as many messages of
the same size over as many connections into the same sink (goal: ratio >= 0.5, stretch 0.7).
msg/s: subscribers / the whole process's wall time; send msg/s: between the process's first
and last progress lines (10% and 100% sent); CPU/msg: the process's CPU time (user + system,
start-up included) per message, what bounds it on a machine of its own. With --repeat N,
publish now runs N times per row on copies of the same site and the median run is shown.
PostgreSQL: a throwaway cluster (fsync=off)."""


def workers_to_try(wanted: list[int]) -> list[int]:
    """``wanted``, when this version has ``delivery.workers``; else just its one process (0)."""
    if "workers" in {f.name for f in fields(configuration.DeliveryConfig)}:
        return wanted
    print("(this version has no delivery.workers: one sender process)", flush=True)
    return [0]


def table(rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)))


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
