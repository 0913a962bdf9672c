"""The garbage collector around a ``publish`` process's imports and its end.

Importing what a command needs (SQLAlchemy, Jinja2, the pipeline) makes a few hundred
thousand objects and no garbage, and they live as long as the process: the collector
stays off while the imports run (each pass would walk everything imported so far:
~30 ms of ``publish now``'s start-up), and what they made is then frozen
(``gc.freeze``), so no later collection walks it again. When the command is done, the
rest is frozen too: the interpreter's last collections before it exits walked every
object (~0.1 s after ``publish now`` has printed its report); what is still alive
then is released with the process. Files, connections and locks are closed by the
code that opened them, never left to the collector at exit.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def importing() -> Iterator[None]:
    """No collections while the block imports; what it made is frozen after it."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if collecting:
            gc.enable()


def ending() -> None:
    """The process is about to exit: its objects need no last collection."""
    gc.freeze()
