"""Writing many new rows at once (a large import), rows concurrent writers may both
add (upsert), and statements compiled once for a
driver cursor (the sending loop's hot path)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, Table, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError


def upsert(dialect: str, table: Table) -> Any:
    """The INSERT of the store's dialect (``postgresql`` or ``sqlite``) for ``table``,
    which takes ``on_conflict_do_nothing`` and ``on_conflict_do_update``: a row that
    concurrent writers may both add (the second one's insert becomes the conflict rule,
    not a unique-key error)."""
    return (postgresql if dialect == "postgresql" else sqlite).insert(table)


def insert_new(engine: Engine, table: Table, rows: Sequence[dict[str, Any]]) -> int:
    """Insert ``rows`` in one transaction; if another program inserted one of them
    meanwhile (a unique key taken), insert them one by one, skipping those. Returns how
    many were inserted."""
    if not rows:
        return 0
    try:
        with engine.begin() as conn:
            conn.execute(insert(table), list(rows))
        return len(rows)
    except IntegrityError:
        added = 0
        for row in rows:
            try:
                with engine.begin() as conn:
                    conn.execute(insert(table), row)
                added += 1
            except IntegrityError:
                pass
        return added


class Compiled:
    """A Core statement compiled once for the engine's driver, run on a driver cursor
    (the sending loop's hot path: no per-call compile or result machinery)."""

    def __init__(self, engine: Engine, statement: Any) -> None:
        compiled = statement.compile(dialect=engine.dialect)
        self.sql = str(compiled)
        self.defaults = dict(compiled.params)
        self.order = list(compiled.positiontup) if compiled.positional else None

    def args(self, **params: Any) -> Any:
        values = {**self.defaults, **params}
        return tuple(values[k] for k in self.order) if self.order is not None else values
