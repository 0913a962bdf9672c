"""Locks: named locks kept in the store, so they work across processes and machines.

A lock row names its holder (host, process, what it is doing) and an expiry. While a
holder works, a heartbeat thread renews the lock every third of its lifetime
(``[store] lease`` seconds), so a long run keeps it; a holder that was killed stops
renewing and its lock is taken over once it has expired. Every acquisition has its own
owner string, so two threads of one process (a scheduled job and a web request)
exclude each other too.

Three locks exist: ``SITE_LOCK``, which every writer of a site takes (``publish now``,
each scheduled job), ``SCHEDULER_LOCK``, held by the one running scheduler, and
``CONFIRMATIONS_LOCK``, held by the one process sending confirmation mails.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import socket
import threading
import time
from datetime import timedelta

from publisher.errors import LockBusy, Stopped
from publisher.store.meta import Meta

log = logging.getLogger(__name__)

SITE_LOCK = "publish"
SCHEDULER_LOCK = "scheduler"
CONFIRMATIONS_LOCK = "confirmations"


_HOLDER = re.compile(r" on (?P<host>\S+) pid (?P<pid>\d+) \[")


def _died_here(holder: str) -> bool:
    """Whether a holder ("what on HOST pid PID [..]") was a process of this machine
    that no longer exists; holders on other machines wait for their lock to expire."""
    m = _HOLDER.search(holder)
    if m is None or m.group("host") != socket.gethostname():
        return False
    try:
        os.kill(int(m.group("pid")), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class Lock:
    def __init__(self, meta: Meta, name: str, what: str, ttl: float = 60.0) -> None:
        self.meta = meta
        self.name = name
        self.ttl = ttl
        self.owner = f"{what} on {socket.gethostname()} pid {os.getpid()} [{secrets.token_hex(4)}]"
        self.lost = threading.Event()  # set when a renewal found someone else holding it
        self._stop_heartbeat = threading.Event()
        self._heartbeat: threading.Thread | None = None

    def try_acquire(self) -> str | None:
        """Take the lock (and start renewing it); return None, or the current holder."""
        holder = self.meta.try_lock(self.name, self.owner, timedelta(seconds=self.ttl))
        if holder is None:
            self._start_heartbeat()
        return holder

    def acquire(self, wait: float, stop: threading.Event | None = None, poll: float = 0.2) -> None:
        """Take the lock, waiting up to ``wait`` seconds for its holder to let go.

        Raises ``LockBusy`` naming the holder when the wait is over, ``Stopped`` when
        ``stop`` is set meanwhile."""
        deadline = time.monotonic() + wait
        while (holder := self.try_acquire()) is not None:
            if _died_here(holder):  # killed on this machine: its lock must not block a resume
                log.warning("taking over the %s lock of %s, which is no longer running", self.name, holder)
                self.meta.release_lock(self.name, holder)
                continue
            if time.monotonic() >= deadline:
                raise LockBusy(
                    f"the site is locked by {holder}; try again when it is done "
                    f"(a lock left by a killed process expires within {self.ttl:g} s)"
                )
            if stop is not None and stop.wait(poll):
                raise Stopped()
            if stop is None:
                time.sleep(poll)

    def release(self) -> None:
        self._stop_heartbeat.set()
        if self._heartbeat is not None and self._heartbeat is not threading.current_thread():
            self._heartbeat.join()
        self._heartbeat = None
        if not self.lost.is_set():
            self.meta.release_lock(self.name, self.owner)

    def _start_heartbeat(self) -> None:
        if self._heartbeat is not None:
            return
        self._stop_heartbeat.clear()
        self._heartbeat = threading.Thread(target=self._renew, name=f"lock-{self.name}", daemon=True)
        self._heartbeat.start()

    def _renew(self) -> None:
        while not self._stop_heartbeat.wait(self.ttl / 3):
            try:
                holder = self.meta.try_lock(self.name, self.owner, timedelta(seconds=self.ttl))
            except Exception as exc:  # the database is briefly unreachable: try again soon
                log.warning("could not renew the %s lock: %s", self.name, exc)
                continue
            if holder is not None:
                log.error("lost the %s lock to %s", self.name, holder)
                self.lost.set()
                return
