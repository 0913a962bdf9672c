"""Writing many new rows at once (a large import), rows concurrent writers may both
add (upsert), statements compiled once for a driver cursor (the sending loop's hot
path), and a list of ids bound as one parameter."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ARRAY,
    Engine,
    Integer,
    String,
    Table,
    and_,
    any_,
    bindparam,
    cast,
    func,
    insert,
    literal,
    literal_column,
    select,
    tuple_,
)
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


def in_ids(dialect: str, column: Any, name: str = "ids", within: tuple[Any, Any] | None = None) -> Any:
    """``column`` is one of the integers bound as the one text parameter ``name``
    (written by ``ids_text``): an array on PostgreSQL, a JSON array read by json_each on
    SQLite. One parameter, whatever the count: a statement compiled once serves every
    count, and the driver binds one string instead of adapting each id (psycopg adapts
    a list of 100 ints in Python: ~100 µs; this string: ~20 µs). ``within``: (a column,
    its value) leading ``column`` in a key, also required: SQLite then looks the pairs up
    as row values in that key (without table statistics its planner read a whole issue's
    deliveries by another index for ``digest_id = ? AND subscriber_id IN (...)`` next to
    a test of ``claim_id``)."""
    ids = bindparam(name, type_=String)
    if dialect == "postgresql":
        found = column == any_(cast(ids, ARRAY(Integer)))
        return found if within is None else and_(within[0] == within[1], found)
    value = literal_column("value")
    if within is None:
        return column.in_(select(value).select_from(func.json_each(ids)))
    pairs = select(literal(within[1]), value).select_from(func.json_each(ids))
    return tuple_(within[0], column).in_(pairs)


def ids_text(dialect: str, ids: Sequence[int]) -> str:
    """``ids`` as the parameter of ``in_ids``."""
    inner = ",".join(map(str, ids))
    return f"{{{inner}}}" if dialect == "postgresql" else f"[{inner}]"
