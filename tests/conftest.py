"""Shared fixtures:

- ``site``: a copy of the demo site in a temporary folder; ``run_publish``: the real
  ``publish`` command (both from tests/sites.py); ``demo_public``: the demo published
  once per session; ``any_store``: ``site`` on SQLite, then on PostgreSQL (tests/pg.py);
- ``daemons``: ``publish run``/``serve`` processes (tests/daemon.py);
- ``mail_server``: a real SMTP server on loopback (tests/mailserver.py; the raw-socket
  tests/hostile_smtp.py is for servers that misbehave on the wire);
- ``upstream``: a scriptable upstream HTTP server (tests/feed_server.py);
- ``dkim_key``; and the W3C validator over every feed a test writes (tests/feedcheck.py).

Test modules import helpers from those modules, never from each other."""

from __future__ import annotations

import compileall
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.daemon import Daemon
from tests.feed_server import Upstream

# Every RSS/Atom feed a test leaves on disk passes the W3C validator (tests/feedcheck.py).
from tests.feedcheck import feed_validator, written_feeds_are_valid  # noqa: F401
from tests.mailserver import MailServer
from tests.pg import pg_url, postgresql, use_store  # noqa: F401 - a throwaway PostgreSQL cluster per session

# Re-exported for modules that still import them from here; new code imports tests.sites.
from tests.sites import ARTIFACTS, CHROMIUM_ARGS, FIXTURES, ROOT, demo_site, publish, require_binary  # noqa: F401


def pytest_configure(config: pytest.Config) -> None:
    """With PYTHONDONTWRITEBYTECODE set, every ``publish`` process a test starts would
    compile each module of publisher again (about 0.2 s of CPU a process): compile them
    once here, the processes then read the bytecode."""
    if sys.dont_write_bytecode:
        compileall.compile_dir(ROOT / "publisher", quiet=1)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A copy of the demo site (config.toml and seeds/) in a fresh folder."""
    return demo_site(tmp_path / "site")


@pytest.fixture
def run_publish() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``run_publish(site, *args, check=True)``: the real ``publish`` command."""
    return publish


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request: pytest.FixtureRequest, site: Path) -> Path:
    """The demo site (as ``site``) on its SQLite file, then on a throwaway PostgreSQL
    database: for a test that must hold on either store."""
    if request.param == "postgresql":
        use_store(site, request.getfixturevalue("pg_url"))
    return site


@pytest.fixture(scope="session")
def demo_public(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo site published once per session (``publish now --no-email``): its
    output folder, for tests that only read the feeds and pages."""
    folder = demo_site(tmp_path_factory.mktemp("demo") / "site")
    publish(folder, "now", "--no-email")
    return folder / "public"


@pytest.fixture
def daemons() -> Iterator[Callable[..., Daemon]]:
    """``daemons(site, *args, command=("run",))`` starts a ``publish`` daemon; any
    still running at the end of the test is killed."""
    started: list[Daemon] = []

    def start(site: Path, *args: str, command: tuple[str, ...] = ("run",)) -> Daemon:
        d = Daemon(site, *args, command=command)
        started.append(d)
        return d

    yield start
    for d in started:
        d.kill()


@pytest.fixture
def mail_server() -> Iterator[MailServer]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that records what it accepts."""
    with MailServer() as server:
        yield server


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    """A scriptable HTTP server on 127.0.0.1: ``upstream.routes[path] = answer(...)``."""
    server = Upstream()
    yield server
    server.close()


@pytest.fixture(scope="session")
def dkim_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """A 2048-bit RSA key made with openssl: (the PEM file, the DER public key)."""
    openssl = require_binary("openssl")
    folder = tmp_path_factory.mktemp("dkim")
    subprocess.run(
        [openssl, "genrsa", "-out", str(folder / "key.pem"), "2048"], check=True, capture_output=True
    )
    public = subprocess.run(
        [openssl, "rsa", "-in", str(folder / "key.pem"), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    return folder / "key.pem", public
