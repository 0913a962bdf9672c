"""Feeds and web edition through the path users take: ``publish feeds`` (pipeline.run)
as its own process, on a SQLite store of N articles (default 100,000).

    python bench/feeds.py [--articles N]

Prints a table: the full build into an empty folder (feeds + every page, written),
a run where nothing changed (every file byte-identical, none rewritten), and a run
after one article was corrected in the store (only the files that show it are
rewritten). Each run's wall time includes starting Python and reading the articles
back from the store. "x floor" is each run's wall time over a plain Python loop that
writes files of the same paths and sizes into an empty folder on the same disk (open,
write, close, one syncfs; nothing rendered, nothing atomic): a full build cannot beat 1.0.

The output writer had a fork pool (page makers forked one per CPU for 2,000 pages or
more) that never ran under the site lock: the lock's heartbeat thread kept it serial,
and publish serve, which now builds every web node's pages, is threaded too. Forced
on through publish feeds (``python bench/feeds.py --articles 30000 --fork-pool both``
at c8f6a8c), on the shared 2-CPU machine, 30,000 articles, wall s (cpu s):

    run                     off            on             on/off   load
    full build              64.5 (18.8)    70.7 (17.8)    1.10     12.6
    full build              50.1 (17.2)    52.2 (16.7)    1.04      9.9
    nothing changed         12.4 (4.9)     20.0 (5.0)     (no page to make: noise)
    one article changed     14.4 (4.7)     19.5 (5.1)     (7 files: noise)

Only a full build has pages enough to fork for, and there it saved nothing on this
loaded machine (writing pages straight through the writer, with no process start,
store or threads, at load 0.7 it took 7.3-7.8 s against 13.3-16.3 s serial). Making it
run would mean forking a process with live threads, so it was removed.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from publisher.models import Article, Author, Saving, StoredArticle  # noqa: E402
from publisher.store import Store  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CONFIG = """[site]
title = "Bench Daily"
base_url = "https://news.example.com/"
timezone = "Asia/Seoul"

[store]
url = "sqlite:///publisher.db"

[output]
dir = "public"
"""

CATEGORIES = ["Politics", "Business", "Culture", "Sports", "Tech", "World", "Opinion", "Science"]
PARAGRAPH = (
    "Seoul city officials said on Tuesday that the new service would begin next month, "
    "after a trial that ran through the spring on three lines of the subway network."
)


def articles(n: int) -> list[StoredArticle]:
    start = datetime(2020, 1, 1, tzinfo=UTC)
    out = []
    for i in range(n, 0, -1):
        when = start + timedelta(minutes=17 * i)
        a = Article(
            id=f"bench:{i}",
            source="bench",
            title=f"Story number {i} about the city and its subway",
            body="\n".join(f"<p>{PARAGRAPH} ({i}.{k})</p>" for k in range(6)),
            published=when,
            updated=when,
            authors=(Author(f"Reporter {i % 97}"), Author(f"Editor {i % 13}")),
            summary=f"Summary of story {i}: {PARAGRAPH[:120]}",
            categories=(CATEGORIES[i % len(CATEGORIES)],),
            image=f"/images/{i}.jpg" if i % 5 == 0 else None,
        )
        out.append(StoredArticle(a, f"story-{i}", when, when, when, content_hash=a.content_hash))
    return out


def publish_feeds(site: Path) -> tuple[float, dict]:
    """``publish feeds --json`` in ``site``: wall seconds and its report."""
    cmd = [sys.executable, "-m", "publisher", "--config", str(site / "config.toml"), "feeds", "--json"]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=site, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"publish feeds failed:\n{done.stderr.decode()}")
    return seconds, json.loads(done.stdout)


def fill(site: Path, items: list[StoredArticle]) -> None:
    """Save ``items`` in the site's SQLite store (not timed)."""
    store = Store.open(f"sqlite:///{site / 'publisher.db'}")
    now = datetime(2024, 1, 1, tzinfo=UTC)
    for i in range(0, len(items), 5000):
        store.articles.save_many([Saving(x.article) for x in items[i : i + 5000]], now)
    store.close()


def correct(site: Path, item: StoredArticle) -> None:
    """One article corrected in the store, as a collect stores it."""
    store = Store.open(f"sqlite:///{site / 'publisher.db'}")
    edited = replace(item.article, body=item.article.body + "<p>Correction.</p>")
    store.articles.save_many([Saving(edited)], datetime(2024, 1, 2, tzinfo=UTC))
    store.close()


def floor(built: Path, into: Path) -> float:
    """Write files of the same relative paths and sizes as ``built`` into the empty
    folder ``into`` the plainest way Python can, then one syncfs: the disk's floor."""
    files = []
    for folder, _, names in os.walk(built):
        rel = Path(folder).relative_to(built)
        files.extend((rel / name, (Path(folder) / name).stat().st_size) for name in names)
    t0 = time.perf_counter()
    for rel, size in files:
        target = into / rel
        if not target.parent.is_dir():
            target.parent.mkdir(parents=True)
        with open(target, "wb") as fh:
            fh.write(b"x" * size)
    fd = os.open(into, os.O_RDONLY)
    try:
        ctypes.CDLL(None).syncfs(fd)
    finally:
        os.close(fd)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--articles", type=int, default=100_000)
    args = parser.parse_args()
    items = articles(args.articles)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-feeds-") as tmp:
        site = Path(tmp) / "site"
        site.mkdir()
        (site / "config.toml").write_text(CONFIG, encoding="utf-8")
        fill(site, items)
        for name in ("full build (empty folder)", "nothing changed", "one article changed"):
            if name == "one article changed":
                correct(site, items[10])
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            seconds, report = publish_feeds(site)
            used = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu_s = used.ru_utime + used.ru_stime - before.ru_utime - before.ru_stime
            rows.append((name, seconds, cpu_s, report))
        ref = floor(site / "public", Path(tmp) / "floor")
    print(f"publish feeds (pipeline.run, its own process), {args.articles:,} articles, SQLite store")
    print(f"{'run':<28}{'wall s':>8}{'cpu s':>8}{'written':>10}{'unchanged':>11}{'x floor':>9}")
    for name, seconds, cpu_s, report in rows:
        written, unchanged = len(report["files_written"]), report["files_unchanged"]
        print(f"{name:<28}{seconds:>8.2f}{cpu_s:>8.2f}{written:>10,}{unchanged:>11,}{seconds / ref:>9.2f}")
    print(f"floor: plain writes of the same files {ref:.2f} s")
    print(f"({os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
