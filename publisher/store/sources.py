"""What each source needs to remember between runs (a feed's ETag and Last-Modified)
and how its last read went, one row per source name."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import Engine, Row, insert, select, update

from publisher.models import SourceStatus
from publisher.store.schema import source_state


class SourceStates:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def get(self, source: str) -> SourceStatus:
        """The source's last recorded status; an empty one for a source never read."""
        with self.engine.connect() as conn:
            row = conn.execute(select(source_state).where(source_state.c.source == source)).first()
        if row is None:
            return SourceStatus(source)
        return _status(row)

    def all(self) -> list[SourceStatus]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(source_state).order_by(source_state.c.source)).all()
        return [_status(r) for r in rows]

    def succeeded(self, source: str, state: dict[str, str], now: datetime) -> None:
        """Record a complete read and the state to send next time."""
        self._put(source, now, ok=True, error=None, state=state)

    def failed(self, source: str, error: str, now: datetime) -> None:
        """Record a failed read; the state of the last good read is kept."""
        self._put(source, now, ok=False, error=error, state=None)

    def _put(self, source: str, now: datetime, *, ok: bool, error: str | None, state: dict | None) -> None:
        values: dict[str, object] = {"checked": now, "ok": ok, "error": error}
        if ok:
            values["succeeded"] = now
        if state is not None:
            values["state"] = json.dumps(state, sort_keys=True)
        with self.engine.begin() as conn:
            done = conn.execute(update(source_state).where(source_state.c.source == source).values(**values))
            if done.rowcount == 0:
                values.setdefault("state", "{}")
                conn.execute(insert(source_state).values(source=source, **values))


def _status(r: Row) -> SourceStatus:
    return SourceStatus(r.source, json.loads(r.state), r.checked, bool(r.ok), r.error, r.succeeded)
