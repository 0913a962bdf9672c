"""When a server is unwell: temporary failures in a row over every sender of one run.

A try that failed for a temporary reason (a 4xx reply, a dropped connection, a timeout)
counts; a delivered or refused message resets the count. ``GIVE_UP_AFTER`` in a row:
the server is unwell (or down, each try waiting for a timeout), so the run stops and
leaves the rest queued for the next one. The count is the run's, not a sender's: the
``delivery.workers`` processes of one ``publish now`` share it (``Streak.shared()``,
made before they start and handed to each), so the run stops after that many tries
in all, however many processes and connections send.
"""

from __future__ import annotations

import multiprocessing
import threading
from typing import Any

GIVE_UP_AFTER = 20  # temporary failures in a row: the server is unwell, stop for this run


class Streak:
    """Temporary failures in a row; once ``GIVE_UP_AFTER`` is reached it stays reached
    (the run stops, a success in flight meanwhile does not start it again)."""

    def __init__(self, value: Any = None) -> None:
        # a process-shared int (multiprocessing.Value, with its lock) or this process's own
        self._value = value if value is not None else _Local()
        self._raw = value.get_obj() if value is not None else self._value  # read without the lock

    @classmethod
    def shared(cls) -> Streak:
        """One count for sender processes started after it (pass it to each)."""
        return cls(multiprocessing.get_context("forkserver").Value("i", 0))  # publisher.senders

    def failed(self) -> bool:
        """Count a temporary failure; True for the one that reached the limit."""
        with self._value.get_lock():
            self._value.value += 1
            return self._value.value == GIVE_UP_AFTER

    def fine(self) -> None:
        """A message went through or was refused: the server answers; start again."""
        if self._raw.value:  # most calls find 0 and stop here
            with self._value.get_lock():
                if self._value.value < GIVE_UP_AFTER:
                    self._value.value = 0

    def reached(self) -> bool:
        return self._raw.value >= GIVE_UP_AFTER

    def __reduce__(self) -> tuple[Any, ...]:  # to a sender process: the shared int only
        return (Streak, (self._value,))


class _Local:
    """The interface of a ``multiprocessing.Value`` for one process."""

    def __init__(self) -> None:
        self.value = 0
        self._lock = threading.Lock()

    def get_lock(self) -> threading.Lock:
        return self._lock
