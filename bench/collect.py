"""Collect speed: the first collect of a large tree of article files, then a second
collect with one file changed, against ``find`` walking the same tree.

    python bench/collect.py [--files 100000] [--keep DIR]

Prints a table. Goals (issue #3): the second collect takes at most 1 s wall for
100,000 files (unchanged files are skipped by size and mtime before any read); the
first collect's files/s is reported with ``find``'s figure as the machine reference.
Each collect is timed on its own (``collect()``, no interpreter start-up); the store is
closed and opened again between them, as the next scheduled run would.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from publisher.collect import collect  # noqa: E402
from publisher.config import from_dict  # noqa: E402
from publisher.store import Store  # noqa: E402

SECOND_GOAL = 1.0


def make_tree(root: Path, count: int) -> None:
    """``count`` export files in folders of 1,000, as a newsroom archive by day."""
    for i in range(count):
        folder = root / f"{i // 1000:04d}"
        if i % 1000 == 0:
            folder.mkdir(parents=True, exist_ok=True)
        day = 1 + i % 28
        (folder / f"{i:06d}.txt").write_text(
            f"Story number {i} about the city\n"
            f"Published: {day} May. 2025, {i % 24:02d}:{i % 60:02d}\n"
            f"The first paragraph of story {i} says what happened, where and when.\n"
            f"A second paragraph adds what officials said about it on the record.\n"
            f"BY KIM MIN-JI, PARK SEO-YEON [kim@example.com]\n",
            encoding="utf-8",
        )


def timed(fn):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--keep", type=Path, help="build the tree here and keep it")
    args = parser.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="publisher-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    tree = work / "articles"
    try:
        if not tree.is_dir():
            print(f"writing {args.files:,} files under {tree} ...", file=sys.stderr)
            make_tree(tree, args.files)
        db = work / "bench.db"
        for leftover in work.glob("bench.db*"):
            leftover.unlink()
        config = from_dict(
            {"site": {"timezone": "Asia/Seoul"}, "sources": [{"type": "directory", "path": str(tree)}]},
            work / "config.toml",
        )
        find_s, out = timed(
            lambda: (
                subprocess.run(
                    ["find", str(tree), "-type", "f", "-name", "*.txt"], capture_output=True, check=True
                ).stdout
            )
        )
        found = out.count(b"\n")
        store = Store.open(f"sqlite:///{db}")
        now = datetime.now(UTC)
        first_s, first = timed(lambda: collect(config, store, now))
        changed = tree / "0000" / "000000.txt"
        title, published, rest = changed.read_text(encoding="utf-8").split("\n", 2)
        correction = f"Correction {time.time_ns()}: an earlier version misstated the time."
        changed.write_text(f"{title}\n{published}\n{correction}\n{rest}", encoding="utf-8")
        store.close()
        store = Store.open(f"sqlite:///{db}")  # the next scheduled run opens the store afresh
        second_s, second = timed(lambda: collect(config, store, now + timedelta(minutes=15)))
        store.close()

        assert first.new == found, (first.new, found)
        assert (second.updated, second.unchanged) == (1, found - 1), (second.updated, second.unchanged)
        rows = [
            ("find -type f (reference)", found, find_s, "-"),
            ("first collect (parse + store)", first.new, first_s, "-"),
            (
                "second collect (1 changed)",
                second.updated + second.unchanged,
                second_s,
                f"<= {SECOND_GOAL:g} s",
            ),
        ]
        print(f"{'step':32} {'files':>9} {'seconds':>9} {'files/s':>11} {'x find':>8} {'goal':>9}")
        for name, n, secs, goal in rows:
            print(f"{name:32} {n:>9,} {secs:>9.2f} {n / secs:>11,.0f} {secs / find_s:>8.1f} {goal:>9}")
        met = second_s <= SECOND_GOAL
        print(f"second collect goal {'met' if met else 'MISSED'}: {second_s:.2f} s for {found:,} files")
        return 0 if met else 1
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
