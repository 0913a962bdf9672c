"""Whether the holder of a lock or a claim still runs: what the kernel or the database
server knows for sure, never guessed from hostnames and process ids (two containers may
share a hostname; a pid means nothing in another pid namespace) nor from any clock.

While it runs, a holder keeps a *presence* that its death ends at once, however it ends:

- SQLite (one machine): a lock on a file beside the database, which the kernel drops
  when the process ends.

  - A named lock (``publisher.locks``, e.g. the site lock): an exclusive ``flock`` on
    ``DATABASE-NAME.lock``. Holding it *is* holding the lock: whoever can take it knows
    every earlier holder is gone, and nobody takes a lock whose flock is held, however
    long ago the row's expiry passed by some clock (on SQLite the "database's clock" is
    the asking process's own, which may be skewed).
  - A claim (``store.claims``): a write lock on byte ``claim_id`` of
    ``DATABASE-claims.lock``, owned by the claim's own open file description
    (``F_OFD_SETLK``; closing it drops the lock too).

- PostgreSQL: a session advisory lock on a connection the holder keeps open, which the
  server drops when that session ends (the holder died and its socket closed, or the
  server ended a session left idle inside a transaction). A taker that can take the key
  knows the holder is gone; otherwise it waits for the row's expiry by the server's clock.

  - A named lock: keyed by its owner string (a 64-bit hash; owners carry a random token),
    on a connection of its own.
  - A claim: keyed by (the claims' class, the claim's id), on the claim's own connection.

- Anything else (a store with no file, a database without advisory locks): no presence;
  a lock or a claim is taken over only once it expired.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import struct
from typing import Any

from sqlalchemy import Connection, Engine, Integer, func, literal, select

# -- where a presence lives: the one rule for both kinds of holder ----------------------


def _file_beside(engine: Engine, name: str) -> str | None:
    """The presence file of ``name`` beside a SQLite database file (None: the store is not
    a SQLite file every process on this machine opens by its path)."""
    database = engine.url.database or ""
    if (
        engine.dialect.name != "sqlite"
        or not database
        or database == ":memory:"
        or database.startswith("file:")
    ):
        return None
    return f"{database}-{name}.lock"


def _open(path: str) -> int | None:
    """An open file description of ``path``; None: a folder we cannot write (then the
    expiry decides alone)."""
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        return None


# -- a named lock's holder (publisher.locks) ---------------------------------------------


class LockPresence:
    """No presence: nothing is known about a lock's holder but its row's expiry."""

    def hold(self) -> bool:
        """Show that this holder runs; False: a live process holds the lock (a taker
        need not look at the row's expiry)."""
        return True

    def gone(self, _holder: str) -> bool:
        """Whether the process that holds the lock row as ``holder`` is certainly gone."""
        return False

    def close(self) -> None:
        """Stop showing this holder's presence (it let go of the lock)."""


class _FileLock(LockPresence):
    """An exclusive flock on ``path`` (SQLite): holding it is holding the lock."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None

    def hold(self) -> bool:
        if self._fd is not None:
            return True
        fd = _open(self.path)
        if fd is None:
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


class _SessionLock(LockPresence):
    """A PostgreSQL session advisory lock on the owner's key, on a connection kept open."""

    def __init__(self, engine: Engine, owner: str) -> None:
        self.engine = engine
        self.owner = owner
        self._conn: Connection | None = None

    def hold(self) -> bool:
        if self._conn is None:
            conn = self.engine.connect()
            conn.execute(select(func.pg_advisory_lock(_owner_key(self.owner))))
            conn.commit()
            self._conn = conn
        return True

    def gone(self, holder: str) -> bool:
        key = _owner_key(holder)
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
                conn.execute(select(func.pg_advisory_unlock(_owner_key(self.owner))))
                conn.commit()
            finally:
                conn.close()


def _owner_key(owner: str) -> int:
    """A 64-bit advisory lock key of an owner string (owners carry a random token)."""
    return int.from_bytes(hashlib.blake2b(owner.encode(), digest_size=8).digest(), "big", signed=True)


def for_lock(engine: Engine, name: str, owner: str) -> LockPresence:
    """The presence ``owner``, a holder of lock ``name``, keeps on the store behind ``engine``."""
    path = _file_beside(engine, name)
    if path is not None:
        return _FileLock(path)
    if engine.dialect.name == "postgresql":
        return _SessionLock(engine, owner)
    return LockPresence()


# -- a claim's holder (store.claims) -----------------------------------------------------


class ClaimPresence:
    """No presence: nothing is known about a claim's holder but its claim's expiry."""

    def hold(self, conn: Any, claim_id: int) -> None:
        """Show, for as long as this process runs, that it holds ``claim_id``."""

    def gone(self, conn: Any, claim_id: int) -> bool:
        """Whether the holder of ``claim_id`` (another sender) certainly no longer runs."""
        return False

    def drop(self, claim_id: int) -> None:
        """Stop showing ``claim_id`` held: its claim was rolled back (SQLite may give the
        number to the next claim made; PostgreSQL never does)."""

    def close(self, conn: Any, claim_id: int | None) -> None:
        """Stop showing it (the claim was given back)."""


_FLOCK = "hhqqi4x"  # struct flock on Linux: l_type, l_whence, l_start, l_len, l_pid


class _ByteClaims(ClaimPresence):
    """SQLite: a write lock on byte ``claim_id`` of the claims' file, owned by this
    claim's own open file description (``F_OFD_SETLK``)."""

    def __init__(self, path: str) -> None:
        self.fd = _open(path)

    def _lock(self, command: int, kind: int, claim_id: int) -> int:
        assert self.fd is not None
        answer = fcntl.fcntl(self.fd, command, struct.pack(_FLOCK, kind, os.SEEK_SET, claim_id, 1, 0))
        return struct.unpack(_FLOCK, answer)[0]

    def hold(self, conn: Any, claim_id: int) -> None:
        if self.fd is not None:
            self._lock(fcntl.F_OFD_SETLK, fcntl.F_WRLCK, claim_id)

    def drop(self, claim_id: int) -> None:
        if self.fd is not None:
            self._lock(fcntl.F_OFD_SETLK, fcntl.F_UNLCK, claim_id)

    def gone(self, conn: Any, claim_id: int) -> bool:
        if self.fd is None:
            return False
        return self._lock(fcntl.F_OFD_GETLK, fcntl.F_WRLCK, claim_id) == fcntl.F_UNLCK

    def close(self, conn: Any, claim_id: int | None) -> None:
        if self.fd is not None:
            os.close(self.fd)  # drops the lock
            self.fd = None


_CLAIMS = 0x636C6D73  # the class of claims' PostgreSQL advisory locks (class, claim id): "clms"


class _SessionClaims(ClaimPresence):
    """PostgreSQL: a session advisory lock (claims' class, the claim's id) on the claim's
    own connection."""

    def hold(self, conn: Any, claim_id: int) -> None:
        conn.execute(select(func.pg_advisory_lock(_int(_CLAIMS), _int(claim_id))))

    def gone(self, conn: Any, claim_id: int) -> bool:
        # held by this transaction until it ends: a gone holder cannot come back meanwhile
        return bool(
            conn.execute(select(func.pg_try_advisory_xact_lock(_int(_CLAIMS), _int(claim_id)))).scalar()
        )

    def close(self, conn: Any, claim_id: int | None) -> None:
        if claim_id is None:
            return
        try:
            conn.execute(select(func.pg_advisory_unlock(_int(_CLAIMS), _int(claim_id))))
            conn.commit()
        except Exception:
            conn.invalidate()  # ending the session drops the lock


def _int(value: int) -> Any:
    return literal(value, Integer)


def for_claims(engine: Engine) -> ClaimPresence:
    """The presence the claims of one sender keep on the store behind ``engine``."""
    path = _file_beside(engine, "claims")
    if path is not None and hasattr(fcntl, "F_OFD_SETLK"):
        return _ByteClaims(path)
    if engine.dialect.name == "postgresql":
        return _SessionClaims()
    return ClaimPresence()
