"""Small values kept between runs (the signing secret, source state) and the locks."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import Connection, Engine, Integer, Text, cast, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from publisher.store.clock import db_time
from publisher.store.clock import now as db_now
from publisher.store.rows import upsert
from publisher.store.schema import locks, meta

CONTENT_VERSION = "content_version"  # moves whenever what the feeds and pages show changes


def mark_content_changed(conn: Connection) -> None:
    """Move the store's content version on by one, in the caller's transaction (the one
    that stored, corrected or withdrew articles, or archived an issue): a web node
    rebuilds its outputs when the version moves past the one it built (``/healthz`` is
    503 until then). A counter, so no decision rests on any machine's clock; concurrent
    writers each add one (the row is locked by the first until it commits)."""
    bumped = cast(cast(meta.c.value, Integer) + 1, Text)
    first = upsert(conn.dialect.name, meta).values(key=CONTENT_VERSION, value="1")
    conn.execute(first.on_conflict_do_update(index_elements=[meta.c.key], set_={"value": bumped}))


class Meta:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def get(self, key: str) -> str | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(meta.c.value).where(meta.c.key == key)).first()
        return None if row is None else row.value

    def content_version(self) -> int:
        """The store's content version (0: nothing stored yet); ``mark_content_changed``."""
        value = self.get(CONTENT_VERSION)
        return 0 if value is None else int(value)

    def content_now(self) -> tuple[int, datetime]:
        """The content version and the database's time now: what a web node decides
        by (a new version, or an embargo that has just ended)."""
        with self.engine.connect() as conn:
            value = conn.execute(select(meta.c.value).where(meta.c.key == CONTENT_VERSION)).scalar()
            return (0 if value is None else int(value)), db_now(conn)

    def get_or_create_secret(self, key: str = "secret") -> str:
        """A random secret created once and kept: links already mailed keep working."""
        current = self.get(key)
        if current is not None:
            return current
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(meta).values(key=key, value=secrets.token_urlsafe(48)))
        except IntegrityError:
            pass  # another process created it first; use theirs
        value = self.get(key)
        assert value is not None
        return value

    # -- locks (publisher.locks): one row per held lock, expiry by the database's clock --

    def try_lock(self, name: str, owner: str, ttl: float, *, over: str | None = None) -> str | None:
        """Take or renew lock ``name`` for ``owner`` until the database's time + ``ttl``
        seconds; return None on success, else the current holder. The lock is taken when
        free, already ``owner``'s, expired by the database's clock, or held by ``over``
        (a holder known to be gone)."""
        dialect = self.engine.dialect.name
        takeable = [locks.c.owner == owner, locks.c.expires < db_time(dialect)]
        if over is not None:
            takeable.append(locks.c.owner == over)
        with self.engine.begin() as conn:
            taken = conn.execute(
                update(locks)
                .where(locks.c.name == name, or_(*takeable))
                .values(owner=owner, expires=db_time(dialect, ttl))
            )
            if taken.rowcount:
                return None
            holder = conn.execute(select(locks.c.owner).where(locks.c.name == name)).first()
            if holder is not None:
                return holder.owner
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(locks).values(name=name, owner=owner, expires=db_time(dialect, ttl)))
            return None
        except IntegrityError:
            return self.try_lock(name, owner, ttl, over=over)

    def renew_lock(self, name: str, owner: str, ttl: float) -> bool:
        """Extend ``owner``'s hold of lock ``name`` to the database's time + ``ttl``;
        False: the lock is no longer ``owner``'s (it expired and was taken)."""
        with self.engine.begin() as conn:
            return self.hold_lock(conn, name, owner, ttl)

    def hold_lock(self, conn: Connection, name: str, owner: str, ttl: float) -> bool:
        """``renew_lock`` inside the caller's transaction: a write that needs the lock
        made in the same transaction commits only while the lock is still ``owner``'s
        (the renewed row stays locked until the commit)."""
        renewed = conn.execute(
            update(locks)
            .where(locks.c.name == name, locks.c.owner == owner)
            .values(expires=db_time(self.engine.dialect.name, ttl))
        )
        return bool(renewed.rowcount)

    def lock_holder(self, name: str, *, expired: bool = False) -> tuple[str, datetime] | None:
        """Who holds lock ``name`` and until when (None: nobody, or it expired by the
        database's clock, unless ``expired``: a holder known to be alive)."""
        query = select(locks.c.owner, locks.c.expires).where(locks.c.name == name)
        if not expired:
            query = query.where(locks.c.expires > db_time(self.engine.dialect.name))
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else (row.owner, row.expires)

    def release_lock(self, name: str, owner: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(locks).where(locks.c.name == name, locks.c.owner == owner))
