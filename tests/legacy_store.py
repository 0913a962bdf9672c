"""Stores as the release before Alembic wrote them (schema_version 1-3 in ``meta``, no
``alembic_version``): tests/fixtures/store_v3 and rewrites of newer stores into its form."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import MetaData, create_engine, insert, select, text

V3 = Path(__file__).resolve().parent / "fixtures" / "store_v3"


def as_written_before_alembic(db: Path, version: int = 3) -> None:
    """Rewrite the store ``db`` as the release before Alembic wrote it (the fixture's
    tables, its own rows, ``schema_version`` = ``version``)."""
    with sqlite3.connect(V3 / "store.db") as fixture:
        ddl = fixture.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' "
            "ORDER BY type DESC"
        ).fetchall()
    fixture.close()
    old = db.with_name(db.name + ".old")
    with sqlite3.connect(old) as conn:
        conn.execute("ATTACH DATABASE ? AS current", (str(db),))
        for _type, _name, sql in ddl:
            conn.execute(sql)
        for _type, table, _sql in ddl:
            if _type != "table":
                continue
            columns = [r[1] for r in conn.execute(f"PRAGMA main.table_info({table})")]
            have = {r[1] for r in conn.execute(f"PRAGMA current.table_info({table})")}
            listed = ", ".join(f'"{c}"' for c in columns if c in have)
            conn.execute(f"INSERT INTO main.{table} ({listed}) SELECT {listed} FROM current.{table}")
        conn.execute("UPDATE main.meta SET value = ? WHERE key = 'schema_version'", (str(version),))
    conn.close()
    old.replace(db)


def on_server(url: str) -> None:
    """Copy the fixture's tables and rows, as they are, into the empty database ``url``
    (a PostgreSQL server): the store the release before Alembic would have left there."""
    source = create_engine(f"sqlite:///{V3 / 'store.db'}")
    target = create_engine(url)
    try:
        old = MetaData()
        old.reflect(source)
        old.create_all(target)
        with source.connect() as src, target.begin() as dst:
            for table in old.sorted_tables:
                found = [dict(r._mapping) for r in src.execute(select(table))]
                if found:
                    dst.execute(insert(table), found)
            for table in ("subscribers", "digests", "subscribe_requests", "mail_outbox"):
                dst.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
                    )
                )
    finally:
        source.dispose()
        target.dispose()
