"""Whether the holder of a claim (``store.claims``) still runs, as the kernel or the
database server knows it for sure, never guessed from hostnames and process ids:

- SQLite (one machine): a write lock on byte ``claim_id`` of a file beside the database,
  owned by the claim's own open file description (``F_OFD_SETLK``): the kernel drops it
  when the file is closed or the process ends, however it ends.
- PostgreSQL: a session advisory lock (the claims' class, the claim's id) on the claim's
  own connection: the server drops it when the session ends (the holder died and its
  socket closed, or the server ended a session left idle inside a transaction).
- Anything else: nothing is known; a claim is taken over only once it expired.
"""

from __future__ import annotations

import fcntl
import os
import struct
from typing import Any

from sqlalchemy import Engine, Integer, func, literal, select


class Presence:
    """Nothing known about a holder but its claim's expiry."""

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


class _BytePresence(Presence):
    """SQLite (one machine): a write lock on byte ``claim_id`` of a file beside the
    database, owned by this claim's own open file description (``F_OFD_SETLK``), which
    the kernel drops when the file is closed or the process ends, however it ends."""

    def __init__(self, path: str) -> None:
        try:
            self.fd: int | None = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:  # a folder we cannot write: claims expire, nothing more
            self.fd = None

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


_ADVISORY = 0x636C6D73  # PostgreSQL advisory locks (class, claim id) of claims: "clms"


class _SessionPresence(Presence):
    """PostgreSQL: a session advisory lock (claims' class, the claim's id) on the claim's
    own connection; the server drops it when that session ends (the holder died and its
    socket closed). Another sender that can take it knows the holder is gone."""

    def hold(self, conn: Any, claim_id: int) -> None:
        conn.execute(select(func.pg_advisory_lock(_int(_ADVISORY), _int(claim_id))))

    def gone(self, conn: Any, claim_id: int) -> bool:
        # held by this transaction until it ends: a gone holder cannot come back meanwhile
        return bool(
            conn.execute(select(func.pg_try_advisory_xact_lock(_int(_ADVISORY), _int(claim_id)))).scalar()
        )

    def close(self, conn: Any, claim_id: int | None) -> None:
        if claim_id is None:
            return
        try:
            conn.execute(select(func.pg_advisory_unlock(_int(_ADVISORY), _int(claim_id))))
            conn.commit()
        except Exception:
            conn.invalidate()  # ending the session drops the lock


def _int(value: int) -> Any:
    return literal(value, Integer)


def presence(engine: Engine) -> Presence:
    database = engine.url.database or ""
    if engine.dialect.name == "postgresql":
        return _SessionPresence()
    if (
        engine.dialect.name == "sqlite"
        and database
        and database != ":memory:"
        and not database.startswith("file:")
    ):
        if hasattr(fcntl, "F_OFD_SETLK"):
            return _BytePresence(f"{database}-claims.lock")
    return Presence()
