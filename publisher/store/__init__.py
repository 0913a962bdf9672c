"""The store: the only module that speaks SQL (SQLAlchemy Core).

``Store.open(url)`` connects and migrates; its parts group the statements by what
they are about: ``articles``, ``subscribers``, ``ledger`` (digests and deliveries)
and ``meta`` (settings kept between runs, the shared lock).
"""

from __future__ import annotations

from sqlalchemy import Engine, create_engine, event, make_url

from publisher.errors import PublisherError
from publisher.store import schema
from publisher.store.articles import Articles
from publisher.store.ledger import Ledger
from publisher.store.meta import Meta
from publisher.store.outbox import Outbox
from publisher.store.runs import JobRuns
from publisher.store.sources import SourceStates
from publisher.store.subscribers import Subscribers


class Store:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.articles = Articles(engine)
        self.subscribers = Subscribers(engine)
        self.ledger = Ledger(engine)
        self.meta = Meta(engine)
        self.sources = SourceStates(engine)
        self.runs = JobRuns(engine)
        self.outbox = Outbox(engine)

    @classmethod
    def open(cls, url: str) -> Store:
        try:
            shown = make_url(url).render_as_string(hide_password=True)  # a server URL may carry one
        except Exception:
            shown = url.split("://", 1)[0] + "://..."
        try:
            engine = create_engine(url)  # an unknown dialect or a missing driver fails here
        except Exception as exc:
            raise PublisherError(f"cannot open the store {shown}: {exc}") from exc
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        try:
            with engine.begin() as conn:
                schema.migrate(conn)
        except PublisherError:
            engine.dispose()
            raise
        except Exception as exc:  # the URL's database cannot be opened or read
            engine.dispose()
            raise PublisherError(f"cannot open the store {shown}: {exc}") from exc
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_conn: object, _record: object) -> None:
    """WAL with synchronous=NORMAL: every commit survives a killed process without an
    fsync per commit; a busy timeout lets concurrent publishers wait their turn."""
    cur = dbapi_conn.cursor()  # type: ignore[attr-defined]
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


__all__ = ["Store"]
