"""Database servers (PostgreSQL): what a store URL means, and why a server cannot be used,
as one line.

``postgres://`` and ``postgresql://`` (what hosting providers and ``DATABASE_URL`` hand
out) name the installed driver: psycopg (3), else psycopg2. A missing driver, a server
nobody answers at, a refused password or a database that does not exist is a
``StoreSetupError`` naming the URL (its password hidden) and the fix.

``--dry-run`` works on a copy of the store in a scratch schema of the same database
(``scratch_schema``, ``copy_rows``), dropped when the run ends.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.util import find_spec
from typing import Any

from sqlalchemy import URL, Connection, Engine, create_engine, event, inspect, make_url
from sqlalchemy.exc import DBAPIError

from publisher.errors import PublisherError, StoreError, StoreSetupError, UsageError
from publisher.store import migrations, schema

log = logging.getLogger(__name__)

DRIVERS = {"psycopg": 'pip install "psycopg[binary]"', "psycopg2": "pip install psycopg2-binary"}
BARE = ("postgres://", "postgresql://")


def prepare(engine: Engine) -> None:
    """Session settings for every connection to a PostgreSQL store: no JIT compiling.
    The store's statements are short and indexed, but one whose estimated cost passes
    ``jit_above_cost`` (a claim's audience re-check over a long list) would compile
    functions on every run: 170-210 ms instead of 0.5 ms, measured by bench/million.py."""

    def on_connect(dbapi_conn: Any, _record: object) -> None:
        cur = dbapi_conn.cursor()
        try:
            cur.execute("SET jit = off")
        finally:
            cur.close()
        dbapi_conn.commit()

    event.listen(engine, "connect", on_connect)


def with_driver(url: str) -> str:
    """``url`` with a bare PostgreSQL scheme given the installed driver; others unchanged."""
    bare = next((b for b in BARE if url.startswith(b)), None)
    if bare is None:
        return url
    driver = next((d for d in DRIVERS if find_spec(d) is not None), None)
    if driver is None:
        raise StoreSetupError(
            f"cannot open the store {shown(url)}: no PostgreSQL driver is installed: {DRIVERS['psycopg']}"
        )
    return f"postgresql+{driver}://" + url[len(bare) :]


def shown(url: str) -> str:
    """``url`` as errors and logs name it: the password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("://", 1)[0] + "://..."


def missing_driver(url: str, shown: str, exc: Exception) -> StoreSetupError:
    """``create_engine`` failed: the URL names a dialect or driver that is not installed."""
    try:
        parsed: URL | None = make_url(url)
    except Exception:
        parsed = None
    driver = parsed.get_driver_name() if parsed is not None else ""
    if isinstance(exc, ImportError) and driver in DRIVERS:
        fix = f"the driver {driver} is not installed: {DRIVERS[driver]}"
    else:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        fix = f"{first}: check store.url (PostgreSQL: postgresql://USER:PASSWORD@HOST:PORT/DB)"
    return StoreSetupError(f"cannot open the store {shown}: {fix}")


def unusable(url: str, shown: str, exc: Exception) -> StoreSetupError | None:
    """The server at ``url`` refused the connection: one line with the fix, or None when
    ``exc`` is not a connection failure."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return None  # sqlite.py explains its own failures
    text = " ".join(str(getattr(exc, "orig", None) or exc).split())
    host, port = parsed.host or "localhost", parsed.port or 5432
    where = f"{host}:{port}"
    if "does not exist" in text and "database" in text:
        db = parsed.database or ""
        user = f" -U {parsed.username}" if parsed.username else ""
        fix = f"the database {db} does not exist on {where}: create it (createdb -h {host} -p {port}{user} {db})"
    elif "password authentication failed" in text or "no password supplied" in text:
        fix = f"the server at {where} refused the user {parsed.username or ''}: check the user and password of the store URL"
    elif "permission denied for schema" in text:
        db, user = parsed.database or "", parsed.username or "(the user)"
        schema = text.split("permission denied for schema ", 1)[1].split()[0]
        fix = (
            f"the user {user} may not create the store's tables in the database {db}: make it the "
            f"database's owner (ALTER DATABASE {db} OWNER TO {user}) or GRANT CREATE ON SCHEMA {schema} TO {user}"
        )
    elif "too many" in text.lower() or "connection slots are reserved" in text:
        fix = (
            f"the server at {where} has no free connection ({text[:200]}): raise its max_connections, "
            "end idle sessions or lower delivery.workers"
        )
    elif "connection refused" in text.lower() or "could not connect" in text or "timeout" in text.lower():
        fix = (
            f"no PostgreSQL server answers at {where}: start it, or check the host and port of the store URL"
        )
    elif "connection" in text.lower() and "failed" in text.lower():
        fix = f"cannot connect to {where} ({text[:200]}): check the store URL"
    else:
        return None
    return StoreSetupError(f"cannot open the store {shown}: {fix}")


# What a sender process holds on a server while it sends, measured: its claim's own
# connection, and one at a time for the rest (presence, reads, the outcomes' writes);
# whatever its delivery.smtp.connections (one run's peak on PostgreSQL 15: 2 for one
# sender, 4 for two, 6 for four, the parent's included).
SENDER_CONNECTIONS = 2

_ROOM = """
SELECT current_setting('max_connections')::int AS most,
       CASE WHEN r.rolsuper THEN 0 ELSE current_setting('superuser_reserved_connections')::int
            + COALESCE(NULLIF(current_setting('reserved_connections', true), '')::int, 0) END AS reserved,
       (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend') AS used,
       CASE WHEN r.rolsuper OR r.rolconnlimit < 0 THEN NULL
            ELSE r.rolconnlimit - (SELECT count(*) FROM pg_stat_activity WHERE usename = current_user) END
         AS role_room,
       CASE WHEN r.rolsuper OR d.datconnlimit < 0 THEN NULL
            ELSE d.datconnlimit - (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database())
       END AS database_room
FROM pg_roles r, pg_database d
WHERE r.rolname = current_user AND d.datname = current_database()
"""


def senders_that_fit(engine: Engine, wanted: int) -> int:
    """How many of ``wanted`` sender processes the store's server has connections for
    (``SENDER_CONNECTIONS`` each, beside every session open now): ``wanted`` when they
    all fit (or the store is no server), fewer with a warning, or a ``StoreError``
    before anything is sent when not even one fits. A server that turns away a sender
    in the middle of a send would leave its share queued, with an error that blames
    the store URL."""
    if engine.dialect.name != "postgresql":
        return wanted
    try:
        with engine.connect() as conn:
            row = conn.exec_driver_sql(_ROOM).one()
    except DBAPIError as exc:  # a server that will not say (a proxy, a restricted catalog): send as asked
        log.info("cannot read the server's free connections (%s): starting %d senders", _first(exc), wanted)
        return wanted
    room = row.most - row.reserved - row.used
    limits = [f"max_connections {row.most}"]
    if row.reserved:
        limits.append(f"{row.reserved} of them reserved for superusers")
    limits.append(f"{row.used} in use")
    for extra, what in (
        (row.role_room, "the role's CONNECTION LIMIT"),
        (row.database_room, "the database's CONNECTION LIMIT"),
    ):
        if extra is not None and extra < room:
            room, limits = extra, [f"{what} leaves {max(extra, 0)}"]
    room = max(room, 0)
    fit = min(wanted, room // SENDER_CONNECTIONS)
    if fit == 0 and room:  # one sender in this process: the run's own connections serve it but one
        fit = 1
    if fit == wanted:
        return wanted
    where = f"the PostgreSQL server at {engine.url.host or 'localhost'}:{engine.url.port or 5432}"
    more = f"{room} more connection" + ("" if room == 1 else "s")
    why = f"{where} has room for {more} ({', '.join(limits)})"
    if fit == 0:
        raise StoreError(
            f"{why}: nothing was sent, every delivery stays queued; "
            "raise its max_connections or end idle sessions, then run again"
        )
    started = f"{fit} sender processes" if fit > 1 else "one sender (in this process)"
    log.warning(
        "%s: sending with %s instead of %d, each needing %d; raise its max_connections or lower delivery.workers",
        why,
        started,
        wanted,
        SENDER_CONNECTIONS,
    )
    return fit


SCRATCH = "publisher_dry_run_"  # the names of --dry-run's scratch schemas
# The advisory-lock class (the two-key form, apart from presence's one-key locks) a dry
# run holds on its scratch schema's name while it runs: its session ending (the run
# killed) frees it, and the next dry run drops the schema it left.
SCRATCH_LOCKS = 0x70756264


@contextmanager
def scratch_schema(url: str) -> Iterator[tuple[str, str | None]]:
    """A copy of the PostgreSQL store at ``url`` in a new schema of the same database
    (what ``--dry-run`` works on): yields the URL of the copy (its ``search_path`` set to
    the new schema) and the store's own schema (None: the database is new, there is
    nothing to copy); the scratch schema is dropped afterwards,
    and any a killed dry run left is dropped first. The store itself is only read, in
    one snapshot; its sequences are not advanced."""
    shown_url = shown(url)
    url = with_driver(url)
    name = f"{SCRATCH}{secrets.token_hex(6)}"
    real = create_engine(url)
    try:
        holder = real.connect()  # holds the scratch schema's lock until the run ends
        conn = holder
        empty = not inspect(conn).get_table_names()  # a new database: the dry run starts from nothing
        if not empty and not migrations.at_head(conn, shown_url):
            raise UsageError(
                f"--dry-run: the store {shown_url} needs a schema upgrade first: "
                "run `publish status` once (it upgrades the store)"
            )
        source = conn.exec_driver_sql("SELECT current_schema()").scalar_one()
        _drop_abandoned(conn)
        try:
            conn.exec_driver_sql("SELECT pg_advisory_lock(%(c)s, hashtext(%(n)s))", _lock_of(name))
            conn.exec_driver_sql(f'CREATE SCHEMA "{name}"')
            conn.commit()
        except DBAPIError as exc:
            raise StoreSetupError(
                f"--dry-run cannot make a scratch schema in the store {shown_url} ({_first(exc)}): "
                "grant its user CREATE on the database, or run without --dry-run"
            ) from exc
    except PublisherError:
        real.dispose()
        raise
    except Exception as exc:
        real.dispose()
        raise unusable(url, shown_url, exc) or StoreError(
            f"cannot open the store {shown_url}: {' '.join(str(exc).split())}"
        ) from exc
    try:
        parsed = make_url(url)
        options = f"{parsed.query.get('options', '')} -csearch_path={name}".strip()
        scratch = parsed.update_query_dict({"options": options}).render_as_string(hide_password=False)
        yield scratch, None if empty else source
    finally:
        try:
            holder.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
            holder.commit()
        finally:
            holder.close()  # its session's end frees the lock
            real.dispose()


def _lock_of(name: str) -> dict[str, object]:
    return {"c": SCRATCH_LOCKS, "n": name}


def _drop_abandoned(conn: Connection) -> None:
    """Drop the scratch schemas whose dry run is gone (nobody holds their lock)."""
    pattern = SCRATCH.replace("_", "\\_") + "%"
    names = conn.exec_driver_sql(
        "SELECT nspname FROM pg_namespace WHERE nspname LIKE %(p)s", {"p": pattern}
    ).scalars()
    for other in list(names):
        if not conn.exec_driver_sql(
            "SELECT pg_try_advisory_lock(%(c)s, hashtext(%(n)s))", _lock_of(other)
        ).scalar():
            continue  # a dry run is using it
        try:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{other}" CASCADE')
            conn.commit()
        except DBAPIError:  # another user's: left to them
            conn.rollback()
        conn.exec_driver_sql("SELECT pg_advisory_unlock(%(c)s, hashtext(%(n)s))", _lock_of(other))
    conn.commit()


def copy_rows(engine: Engine, source: str | None) -> None:
    """Copy every table of the schema ``source`` into ``engine``'s (a new, empty store
    in its own schema: ``scratch_schema``), in one snapshot, and set its sequences past
    the copied rows; ``source`` None: nothing to copy."""
    if source is None:
        return
    try:
        _copy_rows(engine, source)
    except DBAPIError as exc:
        raise StoreError(f"--dry-run cannot copy the store ({_first(exc)}): run without --dry-run") from exc


def _first(exc: DBAPIError) -> str:
    """The driver's own message, its first line."""
    return (str(exc.orig).strip().splitlines() or [type(exc.orig).__name__])[0]


def _copy_rows(engine: Engine, source: str) -> None:
    quote = engine.dialect.identifier_preparer.quote
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            for table in reversed(schema.metadata.sorted_tables):
                conn.execute(table.delete())
            for table in schema.metadata.sorted_tables:
                cols = ", ".join(quote(c.name) for c in table.columns)
                conn.exec_driver_sql(
                    f"INSERT INTO {quote(table.name)} ({cols}) SELECT {cols} FROM {quote(source)}.{quote(table.name)}"
                )
            serial = conn.exec_driver_sql(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() "
                "AND (column_default LIKE 'nextval(%%' OR is_identity = 'YES')"
            ).all()
            for table_name, column in serial:
                conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence(%(t)s, %(c)s), "
                    f"COALESCE(MAX({quote(column)}), 0) + 1, false) FROM {quote(table_name)}",
                    {"t": quote(table_name), "c": column},
                )
