"""The database's clock: the one time every machine sharing a store agrees on.

Whether a lock or a claim has expired is judged by the database, never by the
machine asking (its clock may be minutes off). ``db_time(dialect, plus)`` is a SQL
expression for the database's current time plus ``plus`` seconds, written the way
``schema.UTCDateTime`` stores times (``YYYY-MM-DDTHH:MM:SS.ffffffZ``, UTC), so it
compares with any such column, and can be stored in one, inside the statement that
uses it.

On SQLite the database's clock is the one machine's own (every process sharing the
file runs there), to the millisecond; on PostgreSQL it is the server's
``clock_timestamp()``, to the microsecond.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Float, cast, func, literal, select
from sqlalchemy.sql.elements import ColumnElement


def db_time(dialect: str, plus: float | ColumnElement[Any] = 0.0) -> ColumnElement[str]:
    """The database's time now plus ``plus`` seconds (a number, or an expression such
    as ``bindparam("ttl", type_=Float)``), as a ``UTCDateTime``-comparable string."""
    amount = literal(float(plus), Float) if isinstance(plus, (int, float)) else plus
    if dialect == "sqlite":
        # 'now' is fixed for the whole statement; %f is SS.SSS, padded to microseconds
        return func.strftime("%Y-%m-%dT%H:%M:%f", "now", func.printf("%+.3f seconds", amount)).concat("000Z")
    if dialect == "postgresql":
        moment = func.clock_timestamp() + func.make_interval(0, 0, 0, 0, 0, 0, cast(amount, Float))
        return func.to_char(func.timezone("UTC", moment), 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
    raise ValueError(f"no database clock for the {dialect} dialect")


def now(conn: Connection) -> datetime:
    """The database's time now, as an aware datetime (for a status line or a test)."""
    value = conn.execute(select(db_time(conn.dialect.name))).scalar_one()
    return datetime.fromisoformat(value[:-1]).replace(tzinfo=UTC)
