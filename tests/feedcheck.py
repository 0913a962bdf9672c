"""The W3C Feed Validator over every feed the tests write.

One validator process serves the whole session (``../shared/tools/validate-feed``,
loaded once and asked again for each batch of files), so checking a feed costs its
validation, not a Python start. Each file is checked as if fetched from the URL its
own ``rel="self"`` link names (the file must sit at that link's path below its site),
at level AA: every warning counts.

Two ways in:

- ``assert_valid(files)`` in a test, for feeds built in-process (bytes) or on disk;
- after every test, the feeds it left under the session's temporary folders (its
  ``tmp_path`` and module fixtures' folders) are checked, so a test that runs
  ``publish`` fails at teardown if any feed it wrote has a validator line. A test
  that writes broken feeds on purpose says so with ``@pytest.mark.invalid_feeds``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _shared_tools() -> Path:
    """``../shared/tools`` beside the repository; for a linked git worktree, beside
    its main worktree (where ../shared is)."""
    here = ROOT.parent / "shared" / "tools"
    if here.is_dir():
        return here
    try:
        listed = subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "list", "--porcelain"], capture_output=True, text=True
        ).stdout
    except OSError:
        return here
    first = listed.split("\n", 1)[0].removeprefix("worktree ").strip()
    beside = Path(first).parent / "shared" / "tools" if first else here
    return beside if beside.is_dir() else here


VALIDATOR = _shared_tools() / "validate-feed"
FEED_NAMES = ("rss.xml", "atom.xml")

# The worker: the validator script's own ``main`` run once per request line.
_WORKER = r"""
import contextlib, io, json, sys
from importlib.machinery import SourceFileLoader
tool = SourceFileLoader("validate_feed", sys.argv[1]).load_module()
for line in sys.stdin:
    pairs = json.loads(line)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            tool.main(["--json", *(f"{f}={u}" for f, u in pairs)])
        except Exception as exc:
            out = io.StringIO(json.dumps({f: [f"validator crashed: {type(exc).__name__}: {exc}"] for f, _ in pairs}))
    sys.stdout.write(json.dumps(json.loads(out.getvalue() or "{}")) + "\n")
    sys.stdout.flush()
"""

_SELF = re.compile(rb"<(?:atom:)?link\b[^>]*\brel=\"self\"[^>]*>")
_HREF = re.compile(rb"\bhref=\"([^\"]+)\"")


def validator_available() -> str | None:
    """Why the validator cannot run here, or None when it can."""
    if not VALIDATOR.is_file():
        return f"the W3C feed validator is not at {VALIDATOR} (../shared/tools)"
    for module in ("lxml", "html5lib", "rdflib"):
        try:
            __import__(module)
        except ImportError:
            return f"the feed validator needs {module} (pip install -e '.[test]')"
    return None


def require_validator() -> None:
    why = validator_available()
    if why:
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)


class Validator:
    """A long-lived validator process; ``check`` returns every line it prints."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None

    def _start(self) -> subprocess.Popen[str]:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _WORKER, str(VALIDATOR)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                encoding="utf-8",
            )
        return self.proc

    def check(self, pairs: list[tuple[Path, str]]) -> list[str]:
        if not pairs:
            return []
        proc = self._start()
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps([[str(f), u] for f, u in pairs]) + "\n")
        proc.stdin.flush()
        answer = proc.stdout.readline()
        if not answer:
            self.proc = None
            return [f"{f}: the validator process died" for f, _ in pairs]
        report = json.loads(answer)
        return [f"{f}: {line}" for f, lines in report.items() for line in lines]

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait(timeout=10)
        self.proc = None


VALIDATOR_PROCESS = Validator()


def self_url(data: bytes) -> str | None:
    """The URL a feed's ``rel="self"`` link names."""
    m = _SELF.search(data)
    h = _HREF.search(m.group(0)) if m else None
    return h.group(1).decode("utf-8", "replace").replace("&amp;", "&") if h else None


def problems(files: Iterable[Path]) -> list[str]:
    """Validator lines (and placement problems) for these feed files."""
    pairs: list[tuple[Path, str]] = []
    lines: list[str] = []
    for path in files:
        data = path.read_bytes()
        url = self_url(data)
        if url is None:
            lines.append(f"{path}: no rel=self link")
            continue
        pairs.append((path, url))
    return lines + VALIDATOR_PROCESS.check(pairs)


def assert_valid(feeds: Mapping[str, bytes] | Iterable[Path]) -> None:
    """Fail with every validator line for these feeds: a ``feeds.build`` result
    ({relative path: bytes}, only its RSS and Atom files) or paths of feed files."""
    require_validator()
    if isinstance(feeds, Mapping):
        with tempfile.TemporaryDirectory(prefix="feedcheck-") as tmp:
            paths = []
            for rel, data in feeds.items():
                if rel.rsplit("/", 1)[-1] in FEED_NAMES:
                    path = Path(tmp) / rel
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(data)
                    paths.append(path)
            lines = problems(paths)
    else:
        lines = problems(list(feeds))
    assert not lines, "feed validator:\n" + "\n".join(lines)


class Written:
    """Feeds left on disk under the session's temporary folders, each version checked once."""

    def __init__(self) -> None:
        self.seen: dict[str, tuple[int, int]] = {}
        self.closed: set[str] = set()  # folders of finished tests: never written again

    def new_feeds(self, roots: Iterable[Path]) -> list[Path]:
        found = []
        for root in roots:
            for folder, _, names in os.walk(root):
                for name in names:
                    if name not in FEED_NAMES:
                        continue
                    path = Path(folder, name)
                    try:
                        st = path.stat()
                        with open(path, "rb") as fh:
                            head = fh.read(5)
                    except OSError:
                        continue
                    state = (st.st_size, st.st_mtime_ns)
                    if head != b"<?xml" or self.seen.get(str(path)) == state:
                        continue
                    self.seen[str(path)] = state
                    found.append(path)
        return found


WRITTEN = Written()


@pytest.fixture(scope="session")
def feed_validator() -> Iterator[Validator]:
    yield VALIDATOR_PROCESS
    VALIDATOR_PROCESS.close()


@pytest.fixture(autouse=True)
def written_feeds_are_valid(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, feed_validator: Validator
) -> Iterator[None]:
    """After each test: every RSS/Atom file it left in the session's temporary folders
    passes the validator (a test's own ``tmp_path`` is closed once checked; module
    fixtures' folders are looked at again after each test)."""
    yield
    if request.node.get_closest_marker("invalid_feeds") or validator_available() is not None:
        return
    base = tmp_path_factory.getbasetemp()
    own = request.node.funcargs.get("tmp_path")
    roots = [p for p in base.iterdir() if p.is_dir() and not p.is_symlink() and str(p) not in WRITTEN.closed]
    lines = problems(WRITTEN.new_feeds(roots))
    if own is not None:
        WRITTEN.closed.add(str(own))
    assert not lines, "feeds this test wrote fail the W3C feed validator:\n" + "\n".join(lines)
