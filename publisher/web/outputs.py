"""This node's outputs as a cache of the shared store.

Every ``publish serve`` keeps its own output.dir current, so any number of web nodes
behind a load balancer serve the same feeds and pages from one store (PostgreSQL, or
a SQLite file on one machine): it builds them whole once it has started (a node whose
folder was never written serves pages after that first build, /healthz saying 503
until then), then asks the store for its content version
every ``POLL`` seconds (one indexed read) and builds again when the version moved
past the one it built, or an embargoed article's time has come (by the database's
clock). A store with nothing in it yet gives nothing to build. Every change readers see moves that version in the
transaction that makes it (``store.meta.mark_content_changed``), so the decision
rests on no machine's clock. ``/healthz`` compares the same two versions.

A build is ``pipeline.write_outputs``: lazy pages, one build at a time on this machine
(``output.building``, shared with ``publish feeds``), readers see the old file or the
new one. The in-memory file cache is emptied after each build.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError

from publisher import output, pipeline
from publisher.config import Config
from publisher.errors import PublisherError
from publisher.store import Store
from publisher.web.static import FileCache

log = logging.getLogger("publisher.web")

POLL = 2.0  # seconds between two reads of the store's content version


class Outputs:
    def __init__(self, config: Config, files: FileCache) -> None:
        self.config = config
        self.root = config.output.dir
        self.files = files
        self.built: int | None = None  # the content version output.dir shows
        self.release: datetime | None = None  # when the next embargoed article comes out
        self._stopping: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._failed = ""  # the last build's error, logged once

    def stale(self, current: int) -> str | None:
        """Why this node cannot serve its outputs as current (one line), or None."""
        self._adopt(current)
        return output.stale(self.root, self.built, current)

    def _adopt(self, current: int) -> bool:
        """Whether output.dir shows content version ``current``: built by this node, or
        by another builder on this machine (``publish feeds``, the scheduler of
        ``publish serve --scheduler``) whose manifest says so; then serve its files."""
        if self.built is not None and self.built >= current:
            return True
        on_disk = output.built_version(self.root)
        if on_disk is None or on_disk < current:
            return False
        self.files.clear()
        self.built = on_disk
        return True

    async def start(self, store: Store) -> None:
        """Build in the background now (a never-built folder, a changed config or theme:
        unchanged pages are not rewritten), then whenever the store moves on. The
        server answers meanwhile; ``/healthz`` says 503 until the outputs are current."""
        self.built = await asyncio.to_thread(output.built_version, self.root)
        self._stopping = asyncio.Event()
        self._task = asyncio.create_task(self._keep_current(store))

    async def stop(self) -> None:
        """Stop polling; a build under way finishes first."""
        if self._stopping is not None and self._task is not None:
            self._stopping.set()
            await self._task

    async def _keep_current(self, store: Store) -> None:
        assert self._stopping is not None
        await self._build(store, every_time=True)
        while not self._stopping.is_set():
            try:
                await asyncio.wait_for(self._stopping.wait(), POLL)
            except TimeoutError:
                await self._build(store)

    async def _build(self, store: Store, every_time: bool = False) -> None:
        try:
            await asyncio.to_thread(self.build, store, every_time)
        except (PublisherError, SQLAlchemyError, OSError) as exc:
            problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if problem != self._failed:  # once per problem, not every POLL seconds
                log.error("cannot build the web edition in %s: %s", self.root, problem)
            self._failed = problem
        except Exception:
            log.exception("building the web edition in %s failed", self.root)
        else:
            if self._failed:
                log.info("the web edition in %s is built again", self.root)
            self._failed = ""

    def build(self, store: Store, every_time: bool = False) -> None:
        """Build output.dir when the store's content moved past what it shows, or an
        embargoed article's time came (by the database's clock, which every node
        shares), or ``every_time``. Another builder on this machine (``publish
        feeds``, the scheduler) may have built it already: then its manifest says so."""
        current, now = store.meta.content_now()
        if current == 0 and not store.articles.published(now, limit=1):
            return  # nothing stored yet: no web edition to serve (/healthz says so)
        released = self.release is not None and now >= self.release
        if not every_time and not released and self._adopt(current):
            return
        report = pipeline.RunReport()
        version = pipeline.write_outputs(
            self.config, store, now, pipeline.Options(what="publish serve"), report
        )
        self.release = store.articles.next_release(now)
        self.files.clear()  # before the version: once healthy, every file is the new one
        self.built = version
        log.info(
            "web edition built from content version %d: %d files written, %d unchanged",
            version,
            len(report.files_written),
            report.files_unchanged,
        )
