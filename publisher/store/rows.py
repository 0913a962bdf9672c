"""Writing many new rows at once (a large import)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, Table, insert
from sqlalchemy.exc import IntegrityError


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
