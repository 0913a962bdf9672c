"""Writing many new rows at once (a large import), rows concurrent writers may both
add (upsert), statements compiled once for a driver cursor (the sending loop's hot
path), and a list of ids bound as one parameter."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
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

    def bound(self, **fixed: Any) -> Callable[..., Any]:
        """``args`` with ``fixed`` given once: a function of the other parameters (by
        keyword) that copies the arguments written once, not building each on every call."""
        values = {**self.defaults, **fixed}
        if self.order is None:
            return lambda **given: {**values, **given}
        template = [values[k] for k in self.order]
        slots: dict[str, list[int]] = {}
        for i, k in enumerate(self.order):
            slots.setdefault(k, []).append(i)

        def args(**given: Any) -> list[Any]:
            out = template.copy()
            for k, v in given.items():
                for i in slots[k]:
                    out[i] = v
            return out

        return args


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


_NAMED = re.compile(r"%\((\w+)\)s")
_PLAIN = re.compile(r"[0-9A-Za-z_:.,{}\-]*")


class Prepared:
    """A ``Compiled`` statement of PostgreSQL prepared under ``name`` on the session of
    ``cur`` (PREPARE), to be run by ``call``'s ``EXECUTE`` inside a simple query of
    several statements: one round trip for all of them, and on a connection in
    autocommit mode one transaction, run statement after statement in their order (a
    statement's writes are seen by the next, its row locks taken before the next's).
    Its arguments but those ``given`` to each call are written as literals once: as
    compiled, or as in ``values``."""

    def __init__(
        self, cur: Any, name: str, compiled: Compiled, given: Sequence[str] = (), **values: Any
    ) -> None:
        self.name, self.given, self.values, self._conn = name, set(given), values, cur.connection
        self.names: list[str] = []

        def number(match: re.Match[str]) -> str:
            if match[1] not in self.names:
                self.names.append(match[1])
            return f"${self.names.index(match[1]) + 1}"

        cur.execute(f"PREPARE {name} AS {_NAMED.sub(number, compiled.sql).replace('%%', '%')}")
        self.renew(compiled)

    def renew(self, compiled: Compiled) -> None:
        """Take the arguments of ``compiled`` (the same statement, built again)."""
        from psycopg.sql import Literal  # PostgreSQL's driver: only a PostgreSQL store has it

        def written(k: str) -> str:
            if k in self.given:
                return "{" + k + "}"
            value = self.values[k] if k in self.values else compiled.defaults.get(k)
            return Literal(value).as_string(self._conn).replace("{", "{{").replace("}", "}}")

        self.compiled = compiled
        self.template = f"EXECUTE {self.name}({', '.join(written(k) for k in self.names)})"

    def call(self, **given: str) -> str:
        """The EXECUTE statement, ``given``: its arguments written by ``number`` or ``text``."""
        return self.template.format_map(given)

    @staticmethod
    def number(value: int) -> str:
        return str(int(value))

    @staticmethod
    def text(value: str) -> str:
        """``value`` as a literal: a stamp or a list of ids (checked: such a string needs
        no escaping)."""
        if not _PLAIN.fullmatch(value):
            raise ValueError(f"not a plain value: {value!r}")
        return f"'{value}'"
