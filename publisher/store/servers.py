"""Database servers (PostgreSQL): what a store URL means, and why a server cannot be used,
as one line.

``postgres://`` and ``postgresql://`` (what hosting providers and ``DATABASE_URL`` hand
out) name the installed driver: psycopg (3), else psycopg2. A missing driver, a server
nobody answers at, a refused password or a database that does not exist is a
``StoreSetupError`` naming the URL (its password hidden) and the fix.
"""

from __future__ import annotations

from importlib.util import find_spec

from sqlalchemy import URL, make_url

from publisher.errors import StoreSetupError

DRIVERS = {"psycopg": 'pip install "psycopg[binary]"', "psycopg2": "pip install psycopg2-binary"}
BARE = ("postgres://", "postgresql://")


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
    elif "connection refused" in text.lower() or "could not connect" in text or "timeout" in text.lower():
        fix = (
            f"no PostgreSQL server answers at {where}: start it, or check the host and port of the store URL"
        )
    elif "connection" in text.lower() and "failed" in text.lower():
        fix = f"cannot connect to {where} ({text[:200]}): check the store URL"
    else:
        return None
    return StoreSetupError(f"cannot open the store {shown}: {fix}")
