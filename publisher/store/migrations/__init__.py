"""The store's schema history: Alembic revisions shipped inside the package, run on
first use by ``Store.open`` (no alembic.ini: the same from a clone, an editable install
and a wheel).

- A new store is made from ``schema.metadata`` in one go and stamped at the head
  revision (tests/test_migrations.py checks that the revisions build the same schema).
- A store written before Alembic carries ``schema_version`` 1, 2 or 3 in its ``meta``
  table: it is stamped at revision ``0001``, ``0002`` or ``0003`` and upgraded from there.
- After an upgrade ``meta.schema_version`` reads ``4`` for ever: publisher releases from
  before Alembic refuse such a store in one line instead of writing to a schema they do not
  know. The revision lives in ``alembic_version``.
- A store at a revision this code does not know (written by a newer publisher) is refused
  in one line, untouched.

The upgrade runs in one transaction that holds the store's write lock (SQLite: BEGIN
IMMEDIATE with foreign keys off while tables are rebuilt; PostgreSQL: an advisory lock):
two programs opening an old store at once upgrade it once, and a failed upgrade leaves it
as it was.

Adding a revision: copy the newest file in ``versions/``, give it a new ``revision`` and
set ``down_revision`` to the head it builds on (the revisions form one line: a test fails
on two heads), change ``schema.py`` to match, and write the upgrade with ``alembic.op``.
"""

from __future__ import annotations

import ast
import logging
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, select, text

from publisher.errors import StoreError
from publisher.store import schema

if TYPE_CHECKING:
    from alembic.script import ScriptDirectory

HERE = Path(__file__).parent
log = logging.getLogger(__name__)
# Alembic narrates every step at INFO; one line of ours says what happened instead.
logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)
LEGACY = {1: "0001", 2: "0002", 3: "0003"}  # meta.schema_version before Alembic -> revision
ALEMBIC_ERA = "4"  # what meta.schema_version says once Alembic keeps the revision


@cache
def scripts() -> ScriptDirectory:
    from alembic.script import ScriptDirectory  # only to upgrade: importing Alembic takes a while

    return ScriptDirectory(str(HERE), version_locations=[str(HERE / "versions")])


@cache
def revisions() -> dict[str, str | None]:
    """Each revision and the one it builds on, read from the files' ``revision`` and
    ``down_revision`` lines without importing Alembic: opening a store at its head (the
    usual case) needs no more. tests/test_migrations.py checks Alembic reads the same."""
    found: dict[str, str | None] = {}
    for path in sorted((HERE / "versions").glob("*.py")):
        values = {
            node.targets[0].id: node.value.value
            for node in ast.parse(path.read_text(encoding="utf-8")).body
            if isinstance(node, ast.Assign)
            and isinstance(node.targets[0], ast.Name)
            and isinstance(node.value, ast.Constant)
        }
        found[values["revision"]] = values["down_revision"]
    return found


def head() -> str:
    known = revisions()
    heads = set(known) - set(known.values())
    if len(heads) != 1:
        raise AssertionError(f"the store's revisions have {len(heads)} heads: {sorted(heads)}")
    return heads.pop()


def upgrade(engine: Engine, shown: str) -> None:
    """Create or upgrade the schema of ``engine``'s database (``shown``: how errors name it)."""
    with engine.connect() as conn:
        if at_head(conn, shown):
            return  # the usual case: one read, no lock
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            raw = conn.connection.dbapi_connection
            level = raw.isolation_level  # type: ignore[union-attr]
            raw.isolation_level = None  # type: ignore[union-attr]  # we say BEGIN ourselves
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")  # only outside a transaction
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        elif conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7244531)")
        try:
            _upgrade(conn, shown)
            if sqlite:
                broken = conn.exec_driver_sql("PRAGMA foreign_key_check").first()
                if broken is not None:
                    raise StoreError(
                        f"the store {shown} could not be upgraded: a row of {broken[0]} lost its reference"
                    )
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            if sqlite:
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                raw.isolation_level = level  # type: ignore[union-attr]


def at_head(conn: Connection, shown: str) -> bool:
    """Whether the store needs no upgrade (it is at this publisher's newest revision)."""
    return _current(conn, shown) == head()


def _current(conn: Connection, shown: str) -> str | None:
    """The store's revision; None when it has none yet (new, or from before Alembic)."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    if revision is not None and revision not in _known():
        raise StoreError(
            f"the store {shown} is at schema revision {revision}, newer than this publisher "
            f"understands (its newest is {head()}): upgrade publisher"
        )
    return revision


def _known() -> frozenset[str]:
    return frozenset(revisions())


def _upgrade(conn: Connection, shown: str) -> None:
    revision = _current(conn, shown)
    current = f"revision {revision}"
    if revision is None:
        legacy = _legacy_version(conn)
        if legacy is None:  # a new store
            schema.metadata.create_all(conn)
            _stamp(conn, head())
            _mark(conn)
            return
        if legacy not in LEGACY:
            raise StoreError(
                f"the store {shown} is at schema version {legacy}, newer than this publisher "
                f"understands: upgrade publisher"
            )
        _stamp(conn, LEGACY[legacy])
        current = f"schema_version {legacy}"
    _run(conn, "upgrade", head())
    _mark(conn)
    log.info("the store %s was upgraded from %s to revision %s", shown, current, head())


def _legacy_version(conn: Connection) -> int | None:
    if not inspect(conn).has_table("meta"):
        return None
    value = conn.execute(select(schema.meta.c.value).where(schema.meta.c.key == "schema_version")).scalar()
    return None if value is None else int(value)


def _mark(conn: Connection) -> None:
    done = conn.execute(
        schema.meta.update().where(schema.meta.c.key == "schema_version").values(value=ALEMBIC_ERA)
    )
    if done.rowcount == 0:
        conn.execute(schema.meta.insert().values(key="schema_version", value=ALEMBIC_ERA))


def _stamp(conn: Connection, revision: str) -> None:
    _run(conn, "stamp", revision)


def _run(conn: Connection, what: str, target: str) -> None:
    script = scripts()

    def step(rev: object, context: object) -> list:
        if what == "stamp":
            return script._stamp_revs(target, rev)  # type: ignore[arg-type]
        return script._upgrade_revs(target, rev)  # type: ignore[arg-type]

    from alembic.config import Config as AlembicConfig
    from alembic.runtime.environment import EnvironmentContext

    config = AlembicConfig()
    with EnvironmentContext(config, script, fn=step, destination_rev=target) as env:
        env.configure(connection=conn, target_metadata=schema.metadata, render_as_batch=True)
        env.run_migrations()
