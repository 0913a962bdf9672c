"""SQLite, the embedded store: its connection settings, and its failures as one line.

A failure the machine or another program causes (a write lock held too long, a
read-only or immutable file, a full disk, a damaged page, a file that is not a
database or holds nothing at all) becomes a ``StoreError`` naming the database file
and what to do, instead of a driver traceback. SQLite itself keeps every committed
transaction through all of these: nothing stored is lost by a failed run.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any

from sqlalchemy import Engine, event

from publisher.errors import StoreError


def prepare(engine: Engine, lock_wait: float, shown_as: str | None = None) -> None:
    """Connection settings and error translation for a SQLite engine."""
    refuse_empty(engine.url.database or "")
    path = shown_as or engine.url.database or ""

    def on_connect(dbapi_conn: sqlite3.Connection, _record: object) -> None:
        try:
            _pragmas(dbapi_conn, lock_wait)
        except sqlite3.Error as exc:
            raise explain(exc, path, lock_wait) or exc from None

    def on_error(context: Any) -> None:
        error = explain(context.original_exception, path, lock_wait)
        if error is not None:
            raise error from None

    event.listen(engine, "connect", on_connect)
    event.listen(engine, "handle_error", on_error)


def _pragmas(dbapi_conn: sqlite3.Connection, lock_wait: float) -> None:
    """WAL with synchronous=NORMAL: every commit survives a killed process without an
    fsync per commit; a busy timeout of ``store.lock_wait`` lets a writer wait for
    another program's write lock that long, and no longer."""
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout={int(lock_wait * 1000)}")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def copy(source: str, dest: str, lock_wait: float) -> None:
    """Copy the database ``source`` to ``dest`` (a consistent snapshot, read-only on
    ``source``: what ``--dry-run`` works on)."""
    refuse_empty(source)
    try:
        with sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=lock_wait) as src:
            with sqlite3.connect(dest) as dst:
                src.backup(dst)
            dst.close()
        src.close()
    except sqlite3.Error as exc:
        raise explain(exc, source, lock_wait) or StoreError(
            f"cannot copy the store {source}: {exc}"
        ) from None


def refuse_empty(path: str) -> None:
    """A zero-length file is not a new site: SQLite would take it for an empty
    database, and the site would start again from nothing (with a new signing
    secret, breaking every unsubscribe link already mailed)."""
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    try:
        size = os.path.getsize(path)
    except OSError:
        return  # absent: a new site is made there
    if size == 0:
        raise StoreError(
            f"the store {path} is an empty file (0 bytes), not a publisher database: restore it from a "
            "backup, or delete it to start a new, empty site"
        )


def explain(exc: BaseException, path: str, lock_wait: float) -> StoreError | None:
    """The one-line explanation of a SQLite failure the user can act on (None: a
    different error, left as it is)."""
    if not isinstance(exc, sqlite3.Error) or isinstance(
        exc, sqlite3.IntegrityError | sqlite3.ProgrammingError
    ):
        return None
    text = str(exc).lower()
    store = f"the store {path}"
    if "locked" in text or "busy" in text:
        return StoreError(
            f"{store} is locked: another program holds its write lock (waited {lock_wait:g} s, "
            "store.lock_wait); try again when it is done"
        )
    if "readonly" in text or "read-only" in text:
        return StoreError(
            f"{store} is read-only (permissions, an immutable flag (lsattr) or a read-only mount): "
            "make the file and its folder writable, then run again"
        )
    if "full" in text:
        return StoreError(
            f"the disk holding {store} is full: free some space, then run again (what was stored is intact)"
        )
    if "malformed" in text or "corrupt" in text:
        return StoreError(
            f"{store} is damaged ({exc}): restore it from a backup, or try `sqlite3 {path} .recover`"
        )
    if "not a database" in text or "file is encrypted" in text:
        return StoreError(f"{path} is not a publisher database ({exc}): check store.url")
    if "unable to open" in text or "disk i/o" in text:
        return StoreError(
            f"cannot use {store} ({exc}): check that the disk is mounted, writable and not full, "
            "and that the folder exists"
        )
    return None
