"""A throwaway PostgreSQL server for the tests: Debian's packaged binaries, a fresh
cluster in a temporary directory, listening on a free port of 127.0.0.1."""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
MEMORY = Path("/dev/shm")
ROOM = 2 * 1024**3  # a session's databases take about 10 MB each, about 1 GB by its end


def require_postgresql() -> Path:
    """The directory of PostgreSQL's server binaries; skip locally, fail in CI if missing."""
    if not (PG_BIN / "initdb").is_file() or not (PG_BIN / "pg_ctl").is_file():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not installed in {PG_BIN} (tests/install.sh installs it)")
        pytest.skip(f"PostgreSQL is not installed in {PG_BIN} (run tests/install.sh)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("psycopg is not installed (pip install -e '.[test]')")
        pytest.skip("psycopg is not installed (pip install -e '.[test]')")
    return PG_BIN


@dataclass
class Server:
    port: int
    sockets: Path
    run_as: list[str]  # the command prefix that runs a tool as the cluster's owner
    _names: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def createdb(self) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        name = f"publisher_{next(self._names)}"
        self.tool("createdb", name)
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def tool(self, name: str, *args: str) -> None:
        cmd = [*self.run_as, str(PG_BIN / name), "-h", str(self.sockets), "-p", str(self.port)]
        subprocess.run([*cmd, "-U", "postgres", *args], check=True, capture_output=True, timeout=30)


def _cluster_folder() -> str | None:
    """Where a cluster lives: in memory when /dev/shm has room (its files are then
    written and removed without a disk: removing a session's databases from disk took
    18 s here), else the usual temporary folder."""
    try:
        return str(MEMORY) if shutil.disk_usage(MEMORY).free >= ROOM else None
    except OSError:
        return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def postgresql() -> Iterator[Server]:
    with cluster(require_postgresql()) as server:
        yield server


@contextmanager
def cluster(bin_dir: Path = PG_BIN) -> Iterator[Server]:
    """A fresh cluster of the binaries in ``bin_dir``, stopped and removed afterwards
    (bench/digest.py uses it outside pytest)."""
    root = Path(tempfile.mkdtemp(prefix="publisher-pg-", dir=_cluster_folder()))
    run_as: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root: the cluster belongs to postgres
        shutil.chown(root, "postgres", "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    data, sockets = root / "data", root
    port = _free_port()

    def run(*cmd: str) -> None:
        done = subprocess.run([*run_as, *cmd], capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}")

    try:
        run(
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
        )
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {sockets} -c fsync=off"
        run(
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(root / "server.log"),
            "-o",
            options,
            "-w",
            "start",
        )
        try:
            yield Server(port, sockets, run_as)
        finally:
            run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_url(postgresql: Server) -> str:
    return postgresql.createdb()


def use_store(site: Path, url: str) -> None:
    """Point the site's config at ``url`` instead of its SQLite file."""
    cfg = site / "config.toml"
    text = cfg.read_text(encoding="utf-8")
    assert 'url = "sqlite:///publisher.db"' in text
    cfg.write_text(text.replace('url = "sqlite:///publisher.db"', f'url = "{url}"'), encoding="utf-8")
