"""The store: the only module that speaks SQL (SQLAlchemy Core).

``Store.open(url)`` connects and brings the schema up to date (``migrations``); its parts
group the statements by what they are about: ``articles``, ``subscribers``, ``subscriptions``, ``ledger``
(digests and deliveries), ``feedback`` (bounces, complaints, the suppression list) and
``meta`` (settings kept between runs, the shared lock).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine

from publisher.config import Config
from publisher.errors import PublisherError, UsageError
from publisher.store import migrations, servers, sqlite
from publisher.store.articles import Articles
from publisher.store.feedback import Feedback
from publisher.store.health import Health
from publisher.store.ledger import Ledger
from publisher.store.meta import Meta
from publisher.store.outbox import Outbox
from publisher.store.runs import JobRuns
from publisher.store.sources import SourceStates
from publisher.store.subscribers import Subscribers
from publisher.store.subscriptions import Subscriptions
from publisher.store.webhooks import WebhookTokens

POOL = 5  # SQLAlchemy's default pool_size: enough for everything but a send
RUN_CONNECTIONS = 5  # besides the SMTP connections' own: the ledger's writer, the queue's reader, the lock


def pool_size(config: Config) -> int:
    """The most connections a run of this site may open at once (per process: each
    sender process of ``delivery.workers`` has its own engine): one for each SMTP
    connection's thread (``delivery.smtp.connections``) and a few of the run's own, so a
    pool never runs dry. The pool opens them only when asked: a sender process's claim
    and reads use about two (measured with 16 SMTP connections), which is what
    ``store.servers.senders_that_fit`` counts against a PostgreSQL server's free connections."""
    return config.delivery.smtp.connections + RUN_CONNECTIONS


class Store:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.articles = Articles(engine)
        self.subscribers = Subscribers(engine)
        self.subscriptions = Subscriptions(engine)
        self.ledger = Ledger(engine)
        self.meta = Meta(engine)
        self.sources = SourceStates(engine)
        self.runs = JobRuns(engine)
        self.outbox = Outbox(engine)
        self.feedback = Feedback(engine)
        self.webhook_tokens = WebhookTokens(engine)
        self.health = Health(engine)

    @classmethod
    def open(
        cls, url: str, *, lock_wait: float = 10.0, shown_as: str | None = None, pool: int = POOL
    ) -> Store:
        """Connect to ``url`` and bring its schema up to date; ``lock_wait``: seconds
        a SQLite write waits for another program's write lock (``store.lock_wait``);
        ``shown_as``: the SQLite file errors name (a scratch copy names its original);
        ``pool``: connections kept open for reuse (``pool_size``; up to 10 more are
        opened while busy)."""
        shown = servers.shown(url)  # a server URL may carry a password
        url = servers.with_driver(url)
        try:
            # an unknown dialect or a missing driver fails here
            engine = create_engine(url, pool_size=pool)
        except Exception as exc:
            raise servers.missing_driver(url, shown, exc) from exc
        if engine.dialect.name == "sqlite":
            sqlite.prepare(engine, lock_wait, shown_as)
        elif engine.dialect.name == "postgresql":
            servers.prepare(engine)
        try:
            migrations.upgrade(engine, shown)
        except PublisherError:
            engine.dispose()
            raise
        except Exception as exc:  # the URL's database cannot be opened or read
            engine.dispose()
            raise servers.unusable(url, shown, exc) or PublisherError(
                f"cannot open the store {shown}: {' '.join(str(exc).split())}"
            ) from exc
        return cls(engine)

    @classmethod
    def of(cls, config: Config) -> Store:
        """The store of a site, with its ``[store]`` settings and a pool for its sending."""
        return cls.open(config.store_url, lock_wait=config.store.lock_wait, pool=pool_size(config))

    @classmethod
    @contextmanager
    def scratch_copy(cls, config: Config) -> Iterator[Store]:
        """A throwaway copy of the site's store (what ``--dry-run`` works on): every
        step runs for real on it and nothing of the real store changes. SQLite: a copy
        of the file; PostgreSQL: a scratch schema in the same database."""
        url, wait, pool = config.store_url, config.store.lock_wait, pool_size(config)
        if url.startswith("sqlite:///"):
            source = url[len("sqlite:///") :]
            with tempfile.TemporaryDirectory(prefix="publisher-dry-run-") as scratch:
                copy = os.path.join(scratch, "store.db")
                if os.path.exists(source):
                    sqlite.copy(source, copy, wait)
                with cls.open("sqlite:///" + copy, lock_wait=wait, shown_as=source, pool=pool) as store:
                    yield store
        elif "postgres" in url.split("://", 1)[0]:
            with servers.scratch_schema(url) as (scratch, source):
                with cls.open(scratch, lock_wait=wait, pool=pool) as store:
                    servers.copy_rows(store.engine, source)
                    yield store
        else:
            raise UsageError("--dry-run needs a SQLite or PostgreSQL store")

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


__all__ = ["Store"]
