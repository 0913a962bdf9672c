"""Feeds and web edition at scale: 100,000 articles.

    python bench/feeds.py [--articles N]

Prints a table: the full build into an empty folder (feeds + every page, written),
a run where nothing changed (every file byte-identical, none rewritten), and a run
where one article changed (only the files that show it are rewritten). Goal: full
build <= 3 s for 100,000 articles.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from publisher import config as config_mod  # noqa: E402
from publisher import feeds, site  # noqa: E402
from publisher.models import Article, Author, StoredArticle  # noqa: E402
from publisher.output import Writer  # noqa: E402

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


def cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def build(config: config_mod.Config, items: list[StoredArticle], out: Path) -> tuple[float, float, Writer]:
    t0, c0 = time.perf_counter(), cpu()
    with Writer(out) as writer:
        for path, data in feeds.build(config, items).items():
            writer.write(path, data)
        writer.write_all(site.build(config, items, []).items())
    return time.perf_counter() - t0, cpu() - c0, writer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--articles", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-feeds-") as tmp:
        root = Path(tmp)
        config = config_mod.from_dict(
            {
                "site": {
                    "title": "Bench Daily",
                    "base_url": "https://news.example.com/",
                    "timezone": "Asia/Seoul",
                }
            },
            root / "config.toml",
        )
        items = articles(args.articles)
        rows = []
        full, full_cpu, w = build(config, items, root / "public")
        rows.append(("full build (empty folder)", full, full_cpu, len(w.written), len(w.unchanged), 3.0))
        again, again_cpu, w = build(config, items, root / "public")
        rows.append(("nothing changed", again, again_cpu, len(w.written), len(w.unchanged), None))
        changed = list(items)
        old = changed[10]
        edited = replace(old.article, body=old.article.body + "<p>Correction.</p>")
        changed[10] = replace(
            old, article=edited, updated=old.updated + timedelta(hours=1), content_hash=edited.content_hash
        )
        one, one_cpu, w = build(config, changed, root / "public")
        rows.append(("one article changed", one, one_cpu, len(w.written), len(w.unchanged), None))
        print(f"feeds + web edition, {args.articles:,} articles")
        print(f"{'run':<28}{'wall s':>8}{'cpu s':>8}{'written':>10}{'unchanged':>11}  goal")
        for name, seconds, cpu_s, written, unchanged, goal in rows:
            mark = "" if goal is None else (f"<={goal:g}s" + (" ok" if seconds <= goal else " MISS"))
            print(f"{name:<28}{seconds:>8.2f}{cpu_s:>8.2f}{written:>10,}{unchanged:>11,}  {mark}")
        print(
            f"({os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}: wall time includes waiting for the disk)"
        )
        print("rewritten in the one-article run:", ", ".join(sorted(w.written)))


if __name__ == "__main__":
    main()
