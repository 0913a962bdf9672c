"""The demo site as tests use it: a copy in a temporary folder, its config.toml edited
in place, the real ``publish`` command run on it, and its Maildir outbox read back.

Fixtures built on these live in tests/conftest.py (``site``, ``run_publish``,
``demo_public``); modules that need a differently made site call ``demo_site`` directly.
"""

from __future__ import annotations

import mailbox
import os
import re
import shutil
import subprocess
import sys
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest

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


def demo_site(folder: Path, *, seeds: bool = True, **edits: str) -> Path:
    """A copy of the demo site (config.toml and, unless ``seeds=False``, seeds/) in
    ``folder``. Keyword edits set keys of config.toml as TOML values:
    ``base_url='"http://127.0.0.1:8080/"'`` replaces the ``base_url = ...`` line."""
    folder.mkdir(parents=True, exist_ok=True)
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    for key, value in edits.items():
        text, n = re.subn(rf"^{re.escape(key)} = .*$", f"{key} = {value}", text, count=1, flags=re.M)
        assert n == 1, f"the demo config.toml has no {key!r} line to edit"
    (folder / "config.toml").write_text(text, encoding="utf-8")
    if seeds:
        shutil.copytree(ROOT / "seeds", folder / "seeds")
    return folder


def edit_file(path: Path, old: str, new: str) -> None:
    """Replace the first ``old`` in the UTF-8 file ``path`` with ``new`` (``old`` must be there)."""
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} is not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def edit_config(site: Path, old: str, new: str) -> None:
    """Replace the first ``old`` in SITE/config.toml with ``new`` (``old`` must be there)."""
    edit_file(site / "config.toml", old, new)


def correct_the_seed(site: Path) -> None:
    """Edit the demo's first article as a newsroom corrects a story (same file, new text)."""
    edit_file(site / "seeds" / "000_8e4dca2d4b25ece8.txt", "11 global cities", "12 global cities")


def publish_command(site: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "publisher", "--config", str(site / "config.toml"), *args]


def publish_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a ``publish`` subprocess: this checkout first on the path."""
    return {**os.environ, "PYTHONPATH": str(ROOT), **(extra or {})}


def publish(
    site: Path,
    *args: str,
    check: bool = True,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m publisher --config SITE/config.toml ARGS`` as a real process
    (in SITE, or in ``cwd``; ``input`` on its stdin)."""
    result = subprocess.run(
        publish_command(site, *args),
        input=input,
        capture_output=True,
        text=True,
        cwd=cwd or site,
        env=publish_env(env),
        timeout=120,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"publish {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result


def start_publish(
    site: Path, *args: str, env: dict[str, str] | None = None, **popen: object
) -> subprocess.Popen[str]:
    """``publish ARGS`` started in the background; by default with stdout and stderr
    piped as text (``popen`` overrides any ``subprocess.Popen`` option)."""
    options: dict[str, object] = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    options.update(popen)
    return subprocess.Popen(publish_command(site, *args), cwd=site, env=publish_env(env), **options)  # type: ignore[call-overload]


# -- the outbox (delivery.transport = "maildir") ---------------------------------------


def _delivered(key: str) -> tuple[int, int, str]:
    """Maildir names start "<seconds>.M<microseconds>...": the order of delivery."""
    match = re.match(r"(\d+)\.M(\d+)", key)
    return (int(match.group(1)), int(match.group(2)), key) if match else (0, 0, key)


def raw_mails(site: Path) -> list[bytes]:
    """Every message in SITE/outbox as stored (LF line ends), oldest first."""
    path = site / "outbox"
    if not all((path / sub).is_dir() for sub in ("tmp", "new", "cur")):
        return []  # not made yet, or being made right now
    box = mailbox.Maildir(path, create=False)
    return [box.get_bytes(k) for k in sorted(box.keys(), key=_delivered)]


def mails(site: Path) -> list[EmailMessage]:
    """Every message in SITE/outbox, parsed, oldest first."""
    return [BytesParser(policy=policy.default).parsebytes(raw) for raw in raw_mails(site)]  # type: ignore[misc]


def recipients(site: Path) -> list[str]:
    """The To header of every message in SITE/outbox, oldest first."""
    return [str(m["To"]) for m in mails(site)]


def descendants(pid: int) -> set[int]:
    """Every live process started by ``pid``, and by those (from /proc)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, todo = set(), [pid]
    while todo:
        of = todo.pop()
        kids = [p for p, parent in parents.items() if parent == of]
        found.update(kids)
        todo += kids
    return found
