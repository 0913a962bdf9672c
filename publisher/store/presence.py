"""A lock holder's presence: what the kernel or the database server knows for sure
about whether the holder of a lock (``publisher.locks``) is still running.

A lock row names its holder and an expiry; while the holder runs, it also keeps a
*presence* that its death ends at once, whatever the clocks say and whatever the
hostnames and process ids:

- SQLite (one machine): an exclusive ``flock`` on a file beside the database
  (``store.db-publish.lock`` for the ``publish`` lock). The kernel drops it when the
  process ends, however it ends. Holding the flock *is* holding the lock: whoever can
  take it knows every earlier holder is gone, and nobody takes a lock whose flock is
  held, however long ago the row's expiry passed by some clock (on SQLite the
  "database's clock" is the asking process's own, which may be skewed).
- PostgreSQL: a session advisory lock keyed by the holder's owner string, held on a
  connection the holder keeps open. The server drops it when that session ends (the
  process died and its socket closed). A taker that can take the key knows the row's
  holder is gone; otherwise it waits for the row's expiry by the server's clock.
- Anything else (a store with no file, a database without advisory locks): no
  presence; a lock is taken over only once expired.
"""

from __future__ import annotations

import fcntl
import hashlib
import os

from sqlalchemy import Connection, Engine, func, select


class Presence:
    """No presence: nothing is known about a holder but its lock's expiry."""

    def hold(self) -> bool:
        """Show that this holder runs; False: a live process holds the lock (a taker
        need not look at the row's expiry)."""
        return True

    def gone(self, _holder: str) -> bool:
        """Whether the process that holds the lock row as ``holder`` is certainly gone."""
        return False

    def close(self) -> None:
        """Stop showing this holder's presence (it let go of the lock)."""


class FilePresence(Presence):
    """An exclusive flock on ``path`` (SQLite): holding it is holding the lock."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None

    def hold(self) -> bool:
        if self._fd is not None:
            return True
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:  # a folder we cannot write: the lock's expiry decides alone
            return True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def gone(self, _holder: str) -> bool:
        return self._fd is not None  # a live holder would hold the flock we hold

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # drops the flock
            self._fd = None


class SessionPresence(Presence):
    """A PostgreSQL session advisory lock on the owner's key, on a connection kept open."""

    def __init__(self, engine: Engine, owner: str) -> None:
        self.engine = engine
        self.owner = owner
        self._conn: Connection | None = None

    def hold(self) -> bool:
        if self._conn is None:
            conn = self.engine.connect()
            conn.execute(select(func.pg_advisory_lock(_key(self.owner))))
            conn.commit()
            self._conn = conn
        return True

    def gone(self, holder: str) -> bool:
        key = _key(holder)
        with self.engine.connect() as conn:
            free = bool(conn.execute(select(func.pg_try_advisory_lock(key))).scalar_one())
            if free:
                conn.execute(select(func.pg_advisory_unlock(key)))
            conn.commit()
        return free

    def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                conn.execute(select(func.pg_advisory_unlock(_key(self.owner))))
                conn.commit()
            finally:
                conn.close()


def _key(owner: str) -> int:
    """A 64-bit advisory lock key of an owner string (owners carry a random token)."""
    return int.from_bytes(hashlib.blake2b(owner.encode(), digest_size=8).digest(), "big", signed=True)


def presence(engine: Engine, name: str, owner: str) -> Presence:
    """The presence a holder of lock ``name`` keeps on the store behind ``engine``."""
    dialect = engine.dialect.name
    database = engine.url.database or ""
    if dialect == "sqlite" and database and database != ":memory:" and not database.startswith("file:"):
        return FilePresence(f"{database}-{name}.lock")
    if dialect == "postgresql":
        return SessionPresence(engine, owner)
    return Presence()
