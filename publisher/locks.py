"""Locks: named locks kept in the store, so they work across processes and machines.

A lock row names its holder (host, process, what it is doing) and an expiry, set and
judged by the database's clock (``store.clock``), never the asking machine's. While a
holder works, a heartbeat thread renews the lock every third of its lifetime
(``[store] lease`` seconds), so a long run keeps it. Every acquisition has its own owner
string, so two threads of one process (a scheduled job and a web request) exclude each
other too.

Whether a holder still runs is never guessed from hostnames and process ids (two
containers may share a hostname, and a pid means nothing in another pid namespace). A
holder keeps a *presence* the kernel or the database server ends when it dies
(``store.liveness``: a flock beside a SQLite file, a PostgreSQL session advisory lock),
so a killed run's lock is taken at once; where no presence tells, a holder that
stopped renewing loses its lock once it expired. A holder whose renewal finds the lock
taken sets ``lost``; ``check()`` raises ``LockLost`` then, before the next write that
needs the lock.

Three locks exist: ``SITE_LOCK``, which every writer of a site's content takes
(collect, issue creation, feeds and pages; delivery relies on its claims instead),
``SCHEDULER_LOCK``, held by the one running scheduler, and ``CONFIRMATIONS_LOCK``,
held by the one process sending confirmation mails.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time

from sqlalchemy import Connection

from publisher.errors import LockBusy, LockLost, Stopped
from publisher.store.liveness import LockPresence, for_lock
from publisher.store.meta import Meta

log = logging.getLogger(__name__)

SITE_LOCK = "publish"
SCHEDULER_LOCK = "scheduler"
CONFIRMATIONS_LOCK = "confirmations"


class Lock:
    def __init__(self, meta: Meta, name: str, what: str, ttl: float = 60.0) -> None:
        self.meta = meta
        self.name = name
        self.ttl = ttl
        self.owner = f"{what} on {socket.gethostname()} pid {os.getpid()} [{secrets.token_hex(4)}]"
        self.lost = threading.Event()  # set when a renewal found someone else holding it
        self._presence: LockPresence | None = None
        self._stop_heartbeat = threading.Event()
        self._heartbeat: threading.Thread | None = None

    def try_acquire(self) -> str | None:
        """Take the lock (and start renewing it); return None, or the current holder."""
        if self._presence is None:
            self._presence = for_lock(self.meta.engine, self.name, self.owner)
        if not self._presence.hold():  # a live process holds it, whatever its row says
            held = self.meta.lock_holder(self.name, expired=True)
            return held[0] if held else "another process"
        holder = self.meta.try_lock(self.name, self.owner, self.ttl)
        if holder is not None and self._presence.gone(holder):
            log.warning("taking over the %s lock of %s, which is no longer running", self.name, holder)
            holder = self.meta.try_lock(self.name, self.owner, self.ttl, over=holder)
        if holder is None:
            self.lost.clear()
            self._start_heartbeat()
        return holder

    def acquire(self, wait: float, stop: threading.Event | None = None, poll: float = 0.2) -> None:
        """Take the lock, waiting up to ``wait`` seconds for its holder to let go.

        Raises ``LockBusy`` naming the holder when the wait is over, ``Stopped`` when
        ``stop`` is set meanwhile."""
        deadline = time.monotonic() + wait
        try:
            while (holder := self.try_acquire()) is not None:
                if time.monotonic() >= deadline:
                    raise LockBusy(
                        f"the site is locked by {holder}; try again when it is done "
                        f"(a lock left by a process that no longer answers expires within {self.ttl:g} s)"
                    )
                if stop is not None and stop.wait(poll):
                    raise Stopped()
                if stop is None:
                    time.sleep(poll)
        except BaseException:
            self._let_go()
            raise

    def check(self) -> None:
        """Raise ``LockLost`` if the lock was taken from this holder meanwhile."""
        if self.lost.is_set():
            raise self._lost()

    def fence(self, conn: Connection) -> None:
        """In the caller's transaction, before it commits: renew the lock, so what that
        transaction wrote commits only while the lock is still this holder's (its row stays
        locked until then); ``LockLost`` once it was taken (the transaction rolls back),
        even before the heartbeat noticed."""
        if not self.meta.hold_lock(conn, self.name, self.owner, self.ttl):
            self.lost.set()
            raise self._lost()

    def _lost(self) -> LockLost:
        return LockLost(f"lost the {self.name} lock to another process; stopped before writing more")

    def release(self) -> None:
        self._stop_heartbeat.set()
        if self._heartbeat is not None and self._heartbeat is not threading.current_thread():
            self._heartbeat.join()
        self._heartbeat = None
        if not self.lost.is_set():
            self.meta.release_lock(self.name, self.owner)
        self._let_go()

    def _let_go(self) -> None:
        if self._presence is not None:
            self._presence.close()
            self._presence = None

    def _start_heartbeat(self) -> None:
        if self._heartbeat is not None:
            return
        self._stop_heartbeat.clear()
        self._heartbeat = threading.Thread(target=self._renew, name=f"lock-{self.name}", daemon=True)
        self._heartbeat.start()

    def _renew(self) -> None:
        renewed = time.monotonic()
        while not self._stop_heartbeat.wait(self.ttl / 3):
            try:
                held = self.meta.renew_lock(self.name, self.owner, self.ttl)
            except Exception as exc:  # the database is briefly unreachable: try again soon
                log.warning("could not renew the %s lock: %s", self.name, exc)
                if time.monotonic() - renewed < self.ttl:
                    continue
                held = False  # unrenewed for a whole lease: another may hold it by now
            if not held:
                log.error("lost the %s lock; stopping before the next write that needs it", self.name)
                self.lost.set()
                return
            renewed = time.monotonic()
