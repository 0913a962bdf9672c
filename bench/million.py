"""A million readers on PostgreSQL, sent by two `publish deliver` workers at once.

    python bench/million.py [--subscribers 1000000] [--workers 2] [--connections 4]
                            [--count-sink] [--pg-setting KEY=VALUE ...] [--keep]

One throwaway PostgreSQL cluster (Debian's binaries, a temporary folder, a free port of
127.0.0.1; default durability settings), one site of 25 articles delivering over SMTP
into postfix's smtp-sink on loopback. Every step is the real command, as its own process:

1. `publish subscribers import` of a CSV file of N readers (it streams, 1,000 rows a batch);
2. the issue made as `publish now` makes it, without sending (collect, the issue and its
   N queued deliveries, the feeds): `pipeline.run` without `Step.SEND`, in its own process;
3. ``--workers`` `publish deliver --workers 1` processes started together (two machines,
   one sender process each), each with ``--connections`` SMTP connections.

Prints one table: each step's seconds and peak RSS (``ru_maxrss`` from ``os.wait4``: the
largest of the process and any it waited for, so a worker's sender child counts), each
worker's share and msg/s, the whole send's msg/s, and the exactly-once checks: smtp-sink
runs with ``-v`` and every RCPT TO it logs is counted per recipient (readers with more
than one copy: goal 0; with none: goal 0), its ``-c`` counter gives the messages
accepted, and the ledger (read with psql) must say ``sent`` for every reader. With
``--count-sink`` the sink only counts (it spends less of the 2 cores on logging), and
duplicates are the messages accepted beyond the readers the ledger says were sent.

This script imports only the standard library, so no child inherits a large parent.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
ARTICLES = 25
PUBLISH = [sys.executable, "-m", "publisher", "--config"]
# The issue, made as `publish now` makes it but sending nothing: the workers send it.
MAKE_ISSUE = textwrap.dedent(
    """
    import sys
    from publisher import config, pipeline
    steps = (pipeline.Step.COLLECT, pipeline.Step.DIGEST, pipeline.Step.BUILD)
    report = pipeline.run(config.load(sys.argv[1]), pipeline.Options(), steps)
    print(" ".join(i.key for i in report.issues))
    """
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, what: str) -> None:
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{what} did not start on port {port}")


class Cluster:
    """A throwaway PostgreSQL cluster (as tests/pg.py makes one, without pytest)."""

    def __init__(self) -> None:
        if not (PG_BIN / "initdb").is_file():
            raise SystemExit(f"PostgreSQL is not installed in {PG_BIN} (apt-get install postgresql)")
        root = Path(tempfile.mkdtemp(prefix="bench-million-pg-"))
        self.root, self.data, self.port = root, root / "data", free_port()
        self.run_as: list[str] = []
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root: the cluster belongs to postgres
            shutil.chown(root, "postgres", "postgres")
            self.run_as = ["runuser", "-u", "postgres", "--"]

    def tool(self, name: str, *args: str) -> str:
        done = subprocess.run(
            [*self.run_as, str(PG_BIN / name), *args], capture_output=True, text=True, timeout=600
        )
        if done.returncode != 0:
            raise SystemExit(f"{name} {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def start(self, settings: list[str]) -> str:
        """Start it (``settings``: KEY=VALUE server settings); the SQLAlchemy URL of a new database in it."""
        self.tool("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8")
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c max_connections=200"
        options += "".join(f" -c {setting}" for setting in settings)
        log = str(self.root / "server.log")
        self.tool("pg_ctl", "-D", str(self.data), "-l", log, "-o", options, "-w", "start")
        self.tool("createdb", "-h", str(self.root), "-p", str(self.port), "-U", "postgres", "million")
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/million"

    def sql(self, query: str) -> str:
        return self.tool(
            "psql",
            "-h",
            str(self.root),
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            "million",
            "-At",
            "-c",
            query,
        )

    def stop(self) -> None:
        """Stop it and remove its folder."""
        if (self.data / "postmaster.pid").exists():
            self.tool("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


class Sink:
    """postfix's smtp-sink on a free port: with ``verbose`` it logs every command (each
    RCPT TO is counted per recipient afterwards); ``-c`` counts the messages accepted."""

    def __init__(self, folder: Path, verbose: bool) -> None:
        if not Path(SMTP_SINK).exists():
            raise SystemExit("postfix's smtp-sink is not installed (apt-get install postfix; bench/run does)")
        self.port, self.log, self.counter = free_port(), folder / "sink.log", folder / "sink.count"
        args = [
            SMTP_SINK,
            *(["-v"] if verbose else []),
            "-c",
            "-u",
            "nobody",
            f"127.0.0.1:{self.port}",
            "256",
        ]
        with self.counter.open("wb") as out, self.log.open("wb") as err:
            self.proc = subprocess.Popen(args, stdout=out, stderr=err)
        wait_for_port(self.port, "smtp-sink")
        self.verbose = verbose

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait()

    def accepted(self) -> int:
        counts = re.findall(rb"mesg=(\d+)", self.counter.read_bytes())
        return int(counts[-1]) if counts else 0

    def per_recipient(self) -> Counter[str]:
        copies: Counter[str] = Counter()
        with self.log.open("rb") as lines:
            for line in lines:
                if b": RCPT TO:<" in line:
                    copies[line.split(b"<", 1)[1].split(b">", 1)[0].decode()] += 1
        return copies


@dataclass
class Ran:
    seconds: float
    rss_mb: float
    stdout: str


def start(site: Path, name: str, *args: str) -> subprocess.Popen[bytes]:
    """``publish ARGS`` (or ``python -c CODE ARGS``) in ``site``, its output in NAME.out/.err."""
    command = [sys.executable, *args] if args[0] == "-c" else [*PUBLISH, str(site / "config.toml"), *args]
    with (site / f"{name}.out").open("wb") as out, (site / f"{name}.err").open("wb") as err:
        return subprocess.Popen(
            command,
            cwd=site,
            env={**os.environ, "PYTHONPATH": str(ROOT), "PUBLISHER_SECRET": "bench-secret"},
            stdout=out,
            stderr=err,
        )


def finish(site: Path, name: str, proc: subprocess.Popen[bytes], started: float) -> Ran:
    """Wait for ``proc``: its seconds since ``started``, peak RSS and stdout (exit 0 or stop)."""
    _, status, usage = os.wait4(proc.pid, 0)
    took = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    out = (site / f"{name}.out").read_text(errors="replace")
    if proc.returncode != 0:
        err = (site / f"{name}.err").read_text(errors="replace")
        raise SystemExit(f"{name} exited {proc.returncode}:\n{out[-2000:]}\n{err[-3000:]}")
    return Ran(took, usage.ru_maxrss / 1024, out)


def run_step(site: Path, what: str, *args: str) -> Ran:
    started = time.perf_counter()
    ran = finish(site, what.replace(" ", "-"), start(site, what.replace(" ", "-"), *args), started)
    print(f"  {what}: {ran.seconds:.1f} s, {ran.rss_mb:.0f} MB", file=sys.stderr, flush=True)
    return ran


def make_site(folder: Path, url: str, port: int, connections: int, readers: int) -> Path:
    """25 articles, the demo config on ``url`` delivering into the sink, a CSV of readers."""
    seeds = folder / "seeds"
    seeds.mkdir(parents=True)
    for i in range(ARTICLES):
        (seeds / f"{i:03}.md").write_text(
            f'+++\ntitle = "Story {i}: the city, its subway and the people who ride it"\n'
            f"published = 2025-05-{1 + i:02}T08:00:00+09:00\n"
            f'authors = ["Reporter {i}"]\ntags = ["News"]\nsummary = "Story {i} in brief."\n+++\n'
            f"Body {i}.\n",
            encoding="utf-8",
        )
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    text = text.replace('url = "sqlite:///publisher.db"', f'url = "{url}"')
    text = text.replace(
        'transport = "maildir"\nmaildir = "outbox"\n',
        'transport = "smtp"\nretry_delay = 0.1\n[delivery.smtp]\nhost = "127.0.0.1"\n'
        f'port = {port}\nsecurity = "none"\nconnections = {connections}\n',
    )
    (folder / "config.toml").write_text(text, encoding="utf-8")
    with (folder / "readers.csv").open("w", encoding="utf-8") as out:
        out.write("email,name\n")
        for i in range(readers):
            out.write(f"reader{i:07}@example.com,Reader {i}\n")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2, help="publish deliver processes (machines)")
    parser.add_argument("--connections", type=int, default=4, help="SMTP connections of each worker")
    parser.add_argument("--count-sink", action="store_true", help="the sink counts messages only (no -v log)")
    parser.add_argument(
        "--pg-setting", action="append", default=[], metavar="KEY=VALUE", help="a PostgreSQL server setting"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (printed)")
    options = parser.parse_args()
    n = options.subscribers
    tmp = Path(tempfile.mkdtemp(prefix="bench-million-"))
    cluster = Cluster()
    sink: Sink | None = None
    rows: list[tuple[str, str, str, str]] = []
    try:
        url = cluster.start(options.pg_setting)
        sink = Sink(tmp, verbose=not options.count_sink)
        site = make_site(tmp / "site", url, sink.port, options.connections, n)
        imported = run_step(site, "subscribers import", "subscribers", "import", "readers.csv")
        if not imported.stdout.startswith(f"{n} added,"):
            raise SystemExit(f"subscribers import said {imported.stdout.strip()[:300]!r}")
        rows.append(
            (
                "subscribers import (streams)",
                f"{imported.seconds:.1f}",
                f"{n / imported.seconds:,.0f}/s",
                f"{imported.rss_mb:.0f}",
            )
        )
        issue = run_step(site, "issue made", "-c", MAKE_ISSUE, str(site / "config.toml"))
        queued = cluster.sql("select count(*) from deliveries where status = 'queued'").strip()
        if queued != str(n):
            raise SystemExit(f"the issue {issue.stdout.strip()!r} queued {queued} deliveries, not {n}")
        rows.append(
            (
                "issue made (collect, queue, feeds)",
                f"{issue.seconds:.1f}",
                f"{n / issue.seconds:,.0f}/s",
                f"{issue.rss_mb:.0f}",
            )
        )

        started = time.perf_counter()
        names = [f"worker-{i + 1}" for i in range(options.workers)]
        workers = [start(site, name, "deliver", "--workers", "1") for name in names]
        ran = [finish(site, name, w, started) for name, w in zip(names, workers, strict=True)]
        wall = max(r.seconds for r in ran)
        sink.stop()
        for i, r in enumerate(ran):
            found = re.search(r"delivered: (\d+) sent", r.stdout)
            share = int(found.group(1)) if found else 0
            rows.append(
                (
                    f"worker {i + 1}: publish deliver --workers 1",
                    f"{r.seconds:.1f}",
                    f"{share:,} sent",
                    f"{r.rss_mb:.0f}",
                )
            )
        rows.append(
            (f"send, {options.workers} workers together", f"{wall:.1f}", f"{n / wall:,.0f} msg/s", "")
        )

        ledger = dict(
            line.split("|")
            for line in cluster.sql("select status, count(*) from deliveries group by status").split()
        )
        accepted = sink.accepted()
        if sink.verbose:
            copies = sink.per_recipient()
            readers = {f"reader{i:07}@example.com" for i in range(n)}
            twice = sum(1 for c in copies.values() if c > 1)
            extra = sum(copies.values()) - len(copies)
            missing = len(readers - copies.keys())
            rows.append(("sink: readers with more than one copy", str(twice), f"{extra} extra", "goal 0"))
            rows.append(("sink: readers with no copy", str(missing), "", "goal 0"))
        else:
            rows.append(
                (
                    "sink: messages beyond the ledger's sent",
                    str(accepted - int(ledger.get("sent", 0))),
                    "",
                    "goal 0",
                )
            )
        rows.append(("sink: messages accepted", f"{accepted:,}", f"of {n:,} readers", ""))
        rows.append(
            (
                "ledger: " + ", ".join(f"{k} {int(v):,}" for k, v in sorted(ledger.items())),
                "",
                "",
                f"goal sent {n:,}",
            )
        )
    finally:
        if sink is not None and sink.proc.poll() is None:
            sink.stop()
        cluster.stop()
        if options.keep:
            print(f"(kept {tmp})", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    sink_mode = "counting only" if options.count_sink else "-v, every RCPT counted"
    settings = ", ".join(options.pg_setting) or "default settings"
    print(
        f"{n:,} subscribers on PostgreSQL ({settings}), {options.workers} `publish deliver` workers "
        f"({options.connections} SMTP connections each) into smtp-sink ({sink_mode}); {os.cpu_count()} cores"
    )
    print(f"{'step':<46} {'seconds':>9} {'rate':>16} {'peak RSS MB':>12}")
    for name, seconds, rate, rss in rows:
        print(f"{name:<46} {seconds:>9} {rate:>16} {rss:>12}")


if __name__ == "__main__":
    main()
