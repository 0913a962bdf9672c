"""Golden files: the demo site's RSS feed and its digest's text part, as they are
built on a fixed clock, kept under tests/golden/ and compared by tests/test_golden.py.

When a change to the feed or the digest is meant, regenerate them and review the diff:

    python -m tests.golden --update     # rewrite tests/golden/*
    python -m tests.golden              # only say which ones differ (exit 1 if any)
"""

from __future__ import annotations

import argparse
import difflib
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from publisher import config as configuration
from publisher import digest, feeds
from publisher.collect import collect
from publisher.store import Store
from tests.sites import demo_site

GOLDEN = Path(__file__).resolve().parent / "golden"
# The clock of every golden: a day after the newest demo article, so all nine are out.
NOW = datetime(2025, 6, 2, 7, 0, tzinfo=UTC)
READER = "reader@example.com"
UNSUBSCRIBE = "https://news.example.com/unsubscribe/TOKEN"
PREFERENCES = "https://news.example.com/preferences/TOKEN"


def _collected(folder: Path) -> tuple[configuration.Config, Store]:
    config = configuration.load(demo_site(folder / "site") / "config.toml")
    store = Store.open(config.store_url)
    collect(config, store, NOW)
    return config, store


def demo_rss() -> str:
    """The demo site's main RSS feed (rss.xml) on the golden clock."""
    with tempfile.TemporaryDirectory() as tmp:
        config, store = _collected(Path(tmp))
        try:
            built = feeds.build(config, store.articles.published(NOW))
        finally:
            store.close()
    return built["rss.xml"].decode("utf-8")


def demo_digest_text() -> str:
    """The text part of the demo site's first digest, as one reader gets it."""
    with tempfile.TemporaryDirectory() as tmp:
        config, store = _collected(Path(tmp))
        try:
            selection = digest.select(store.articles.not_yet_in_digest(NOW), config.digest.max_articles)
        finally:
            store.close()
    key = NOW.astimezone(config.tz).strftime("%Y-%m-%d")
    return digest.render(
        config,
        selection,
        key,
        NOW,
        unsubscribe_url=UNSUBSCRIBE,
        recipient=READER,
        preferences_url=PREFERENCES,
    ).text


GOLDENS: dict[str, Callable[[], str]] = {"rss.xml": demo_rss, "digest.txt": demo_digest_text}


def diff(name: str, actual: str) -> str:
    """A unified diff from the golden file ``name`` to ``actual`` ("" when equal)."""
    path = GOLDEN / name
    expected = path.read_text(encoding="utf-8") if path.exists() else ""
    return "".join(
        difflib.unified_diff(
            expected.splitlines(keepends=True),
            actual.splitlines(keepends=True),
            fromfile=f"tests/golden/{name} (golden)",
            tofile=f"{name} (built now)",
        )
    )


def assert_matches_golden(name: str, actual: str) -> None:
    """Fail with a readable diff when ``actual`` is not the golden file ``name``."""
    changes = diff(name, actual)
    if changes:
        pytest.fail(
            f"{name} differs from its golden file; if the change is meant, run "
            f"`python -m tests.golden --update` and commit tests/golden/:\n{changes}",
            pytrace=False,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.golden", description=__doc__.split("\n\n")[0])
    parser.add_argument("--update", action="store_true", help="rewrite the golden files")
    args = parser.parse_args(argv)
    differing = 0
    for name, build in GOLDENS.items():
        actual = build()
        changes = diff(name, actual)
        if args.update:
            GOLDEN.mkdir(exist_ok=True)
            (GOLDEN / name).write_text(actual, encoding="utf-8")
            print(f"{'updated' if changes else 'unchanged'}: tests/golden/{name}")
        elif changes:
            differing += 1
            sys.stdout.write(changes)
        else:
            print(f"matches: tests/golden/{name}")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
