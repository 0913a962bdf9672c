"""Small values kept between runs (the signing secret, source state) and the locks."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from publisher.store.schema import locks, meta

CONTENT_CHANGED = "content_changed"  # when a collect last stored, corrected or withdrew an article


def mark_content_changed(conn: Connection) -> None:
    """Note, in the transaction that changed the articles, that they changed now (what
    ``/healthz`` compares a web node's outputs with). The wall clock, not a run's ``now``."""
    value = datetime.now(UTC).isoformat()
    if not conn.execute(update(meta).where(meta.c.key == CONTENT_CHANGED).values(value=value)).rowcount:
        conn.execute(insert(meta).values(key=CONTENT_CHANGED, value=value))


class Meta:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def get(self, key: str) -> str | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(meta.c.value).where(meta.c.key == key)).first()
        return None if row is None else row.value

    def content_changed(self) -> datetime | None:
        """When the store's articles last changed (None: never, or before this was kept)."""
        value = self.get(CONTENT_CHANGED)
        return None if value is None else datetime.fromisoformat(value)

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

    # -- locks (publisher.locks): one row per held lock ------------------------------

    def try_lock(self, name: str, owner: str, ttl: timedelta) -> str | None:
        """Take or renew lock ``name`` for ``owner``; return None on success, else the
        current holder. An expired lock (its holder died) is taken over."""
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            taken = conn.execute(
                update(locks)
                .where(locks.c.name == name)
                .where(or_(locks.c.owner == owner, locks.c.expires < now))
                .values(owner=owner, expires=now + ttl)
            )
            if taken.rowcount:
                return None
            holder = conn.execute(select(locks.c.owner).where(locks.c.name == name)).first()
            if holder is not None:
                return holder.owner
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(locks).values(name=name, owner=owner, expires=now + ttl))
            return None
        except IntegrityError:
            return self.try_lock(name, owner, ttl)

    def lock_holder(self, name: str) -> tuple[str, datetime] | None:
        """Who holds lock ``name`` and until when (None: nobody, or it expired)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(locks.c.owner, locks.c.expires).where(locks.c.name == name)).first()
        if row is None or row.expires < datetime.now(UTC):
            return None
        return row.owner, row.expires

    def release_lock(self, name: str, owner: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(locks).where(locks.c.name == name, locks.c.owner == owner))
