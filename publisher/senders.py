"""Sender processes: ``delivery.workers`` processes share the sending of a site's
unfinished issues (``publish now``, the scheduler's send, ``publish deliver``).

Each process starts clean (multiprocessing's ``forkserver``: no inherited locks,
connections or threads), opens its own store and runs the claims loop
(``store.claims``), so the processes never send one delivery twice. The fork server
imports the sending code once (``warm``: ``publish now`` starts it once its issue is
queued, so the import runs beside the feeds and the first sends on another core, and a
run with nothing to send starts none) and each sender
is forked from it ready to send, instead of importing it all again. The parent sends
its own share too, beside them (``here``: its store is open and its code imported, so
it starts sending at once, while the fork server still starts), and watches: it sums
every ``SendReport``, turns the progress into one count for one progress bar, and
passes the children's log records on to its own handlers (the same format, one
stream). Stopping: when the parent's ``stop`` is set (SIGTERM, the scheduler
shutting down), every child gets SIGTERM, finishes the messages in flight and leaves
the rest queued; a parent killed outright takes its children with it. A child never prints
a traceback: a failure comes back as one line in the report's errors, and a child
that died (SIGKILL) is named there too; what it had claimed returns to the queue.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import queue
import select
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from publisher.delivery.sender import SendReport
from publisher.errors import PublisherError

log = logging.getLogger(__name__)

# What a child runs: (its argument, progress(done so far), stop) -> (report, stopped).
Target = Callable[[Any, Callable[[int], None], threading.Event], tuple[SendReport, bool]]
# What the parent runs for its own share: (progress(done so far), stop) -> (report, stopped).
Here = Callable[[Callable[[int], None], threading.Event], tuple[SendReport, bool]]

_PARENT_CHECK = 1.0  # seconds between a child's checks that its parent still runs
# what a sender process runs, imported once by the fork server
_PRELOAD = ["publisher.pipeline", "publisher.delivery.smtp", "publisher.messages", "publisher.store.claims"]


def _context() -> Any:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_PRELOAD)
    return context


def warm() -> None:
    """Start the fork server now (it imports the sending code while this process goes
    on), so the sender processes of a later ``run`` start at once."""
    _context()
    from multiprocessing import forkserver

    forkserver.ensure_running()


@dataclass
class Sent:
    report: SendReport  # every process's, summed
    stopped: bool  # one stopped before it finished (SIGTERM, or its parent went away)


def run(
    target: Target,
    argument: Any,
    count: int,
    progress: Callable[[int], None] | None = None,
    stop: threading.Event | None = None,
    here: Here | None = None,
) -> Sent:
    """Run ``target(argument, progress, stop)`` in ``count`` processes, or, with ``here``,
    in ``count - 1`` while ``here(progress, stop)`` sends this process's share in a
    thread of it; ``progress(done)`` gets the messages done by all of them."""
    context = _context()
    events: Any = context.Queue()
    level = logging.getLogger().getEffectiveLevel()
    own_stop = stop or threading.Event()  # set on the way out: this process's share stops too
    own = None
    if here is not None:  # first: it sends while the fork server starts and forks the others
        share = (here, events, own_stop, "sending in this process failed")
        own = threading.Thread(target=_share, args=share, name="sender-0", daemon=True)
        own.start()
    children = [
        context.Process(
            target=_child, args=(target, argument, events, level, os.getpid()), name=f"sender-{i + 1}"
        )
        for i in range(count - (here is not None))
    ]
    for child in children:
        child.start()
    total = Sent(SendReport(), False)
    done: dict[int, int] = {}  # each sender's messages done so far
    reported: set[int] = set()
    stopping = False
    try:
        while len(reported) < count:
            if own_stop.is_set() and not stopping:
                stopping = True
                _signal(children, signal.SIGTERM)
            try:
                kind, pid, value = events.get(timeout=0.2)
            except queue.Empty:  # a child that ended without its report died (its report came first)
                for child in children:
                    if child.pid not in reported and child.exitcode is not None and events.empty():
                        reported.add(child.pid)
                        total.report.errors.append(_died(child))
                        total.stopped = total.stopped or stopping
                continue
            if kind == "log":
                logging.getLogger(value.name).handle(value)
            elif kind == "done":
                done[pid] = value
                if progress is not None:
                    progress(sum(done.values()))
            elif kind == "report":
                reported.add(pid)
                total.report.add(value[0])
                total.stopped = total.stopped or value[1]
    except BaseException:  # KeyboardInterrupt, a bug: the children stop cleanly too
        own_stop.set()
        _signal(children, signal.SIGTERM)
        raise
    finally:
        # read on: a child blocked writing never ends
        while any(child.is_alive() for child in children) or (own is not None and own.is_alive()):
            try:
                events.get(timeout=0.1)
            except queue.Empty:
                pass
        for child in children:
            child.join()
        events.close()
    return total


def _share(send: Here, events: Any, stop: threading.Event, failure: str) -> None:
    """One sender's share, in a child or in a thread of the parent: its progress and its
    one report go through the children's queue, so the watching loop counts every sender
    alike. A failure (a store that went away, a bug) is one line, never a traceback."""
    pid = os.getpid()
    try:
        report, stopped = send(lambda n: events.put(("done", pid, n)), stop)
    except Exception as exc:
        why = str(exc) if isinstance(exc, PublisherError) else f"{type(exc).__name__}: {exc}"
        report, stopped = SendReport(errors=[f"{failure}: {why}"]), False
    events.put(("report", pid, (report, stopped)))


def _died(child: Any) -> str:
    code = child.exitcode
    how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with status {code}"
    return (
        f"a sender process (pid {child.pid}) {how}; what it had claimed returns to the queue for the next run"
    )


def _signal(children: list[Any], signum: int) -> None:
    for child in children:
        if child.exitcode is None and child.pid is not None:
            try:
                os.kill(child.pid, signum)
            except ProcessLookupError:
                pass


def _child(target: Target, argument: Any, events: Any, level: int, parent: int) -> None:
    """A sender process: its log records go to the parent, SIGTERM and SIGINT (and its
    parent going away) stop it between two messages; it always sends back one report."""
    gc.freeze()  # what the fork server imported: no collection here walks it (or copies its pages)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    pid = os.getpid()
    orphaned = threading.Event()
    _die_with(parent, stop, orphaned)
    root = logging.getLogger()
    root.handlers[:] = [_ToParent(events, pid)]
    root.setLevel(level)
    _share(lambda progress, stop: target(argument, progress, stop), events, stop, "a sender process failed")
    if orphaned.is_set():  # nobody reads the queue any more: do not wait for it to take the rest
        events.cancel_join_thread()
    events.close()
    events.join_thread()


def _die_with(parent: int, stop: threading.Event, orphaned: threading.Event) -> None:
    """This process ends the moment ``parent`` (the run that started it, not the fork
    server it was forked from) does: a SIGKILLed ``publish now`` takes its senders with
    it, as one process would go, and what they had claimed returns to the queue at once
    (``store.claims``). Linux: a pidfd of the parent, waited on by a thread; elsewhere
    the parent is looked for every second and the sender stops between two messages."""
    try:
        handle = os.pidfd_open(parent)
    except ProcessLookupError:  # it died before this process got going
        os._exit(1)
    except (OSError, AttributeError):
        threading.Thread(target=_watch_parent, args=(parent, stop, orphaned), daemon=True).start()
        return
    threading.Thread(target=_kill_self_after, args=(handle,), daemon=True).start()


def _kill_self_after(handle: int) -> None:
    select.select([handle], [], [])  # readable once the process has ended
    os.kill(os.getpid(), signal.SIGKILL)


def _watch_parent(parent: int, stop: threading.Event, orphaned: threading.Event) -> None:
    while True:
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            break
        except PermissionError:  # its pid is someone else's now: it is gone
            break
        time.sleep(_PARENT_CHECK)
    orphaned.set()
    stop.set()


class _ToParent(logging.Handler):
    def __init__(self, events: Any, pid: int) -> None:
        super().__init__()
        self.events, self.pid = events, pid

    def emit(self, record: logging.LogRecord) -> None:
        try:
            record.msg, record.args, record.exc_info = record.getMessage(), None, None
            self.events.put(("log", self.pid, record))
        except Exception:
            self.handleError(record)
