"""Shared fixtures: a real site folder (config.toml, seeds, SQLite store, Maildir
outbox) in a temporary directory, and a way to run the real ``publish`` command."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# Every RSS/Atom feed a test leaves on disk passes the W3C validator (tests/feedcheck.py).
from tests.feedcheck import feed_validator, written_feeds_are_valid  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
# Debian's chromium, headless, kept off the network it cannot reach here.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def require_binary(name: str) -> str:
    """The path of a real tool the test drives; skip locally, fail in CI if missing."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed (tests/install.sh installs it)")
        pytest.skip(f"{name} is not installed (run tests/install.sh)")
    return path


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A copy of the demo site (config.toml and seeds/) in a fresh folder."""
    folder = tmp_path / "site"
    folder.mkdir()
    shutil.copy(ROOT / "config.toml", folder / "config.toml")
    shutil.copytree(ROOT / "seeds", folder / "seeds")
    return folder


def publish(
    site: Path, *args: str, check: bool = True, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m publisher --config SITE/config.toml ARGS`` as a real process
    (in SITE, or in ``cwd``)."""
    result = subprocess.run(
        [sys.executable, "-m", "publisher", "--config", str(site / "config.toml"), *args],
        capture_output=True,
        text=True,
        cwd=cwd or site,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        timeout=120,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"publish {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result


@pytest.fixture
def run_publish():
    return publish
