"""uvicorn's h11 protocol with the limits a public server needs.

uvicorn bounds neither the time a client may take to send its request nor the number
of open connections (its keep-alive timer starts only after a first answer), and
with httptools not even the size of a request head. Here, per connection:

- the request head is at most ``[server] max_header_bytes`` (h11's own bound: a
  larger one is answered 400 and closed, after reading no more than that);
- a whole request (head and body) must arrive within ``[server] read_timeout``
  seconds of the connection's first byte being awaited; a client that drips its
  headers, or never sends any, is closed then;
- at most ``[server] max_connections`` connections are open: a new one beyond that
  closes the one that has waited longest without a request in progress (an idle or
  slow client), or is itself answered 503 when every connection is busy.

Everything else (parsing, the ASGI cycle, keep-alive, shutdown) is uvicorn's.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"connection: close\r\nretry-after: 5\r\ncontent-length: 20\r\n\r\nToo many connections"
)


class Limits:
    """The limits one server applies (set from the config by ``publisher.web.serve``)."""

    def __init__(self, read_timeout: float, max_connections: int) -> None:
        self.read_timeout = read_timeout
        self.max_connections = max_connections


def guarded(limits: Limits) -> type[asyncio.Protocol]:
    """An h11 protocol class applying ``limits``."""

    class Guarded(GuardedH11):
        pass

    Guarded.limits = limits
    return Guarded


class GuardedH11(H11Protocol):
    limits: Limits

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_deadline: asyncio.TimerHandle | None = None
        self._waiting_since = 0.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections and not self._make_room():
            self.connections.discard(self)
            transport.write(_BUSY)
            transport.close()
            return
        self._await_request()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._await_request()  # the next request on this connection gets its own time

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def _await_request(self) -> None:
        self._cancel_deadline()
        self._waiting_since = self.loop.time()
        self._read_deadline = self.loop.call_later(self.limits.read_timeout, self._read_timed_out)

    def _cancel_deadline(self) -> None:
        if self._read_deadline is not None:
            self._read_deadline.cancel()
            self._read_deadline = None

    def _receiving(self) -> bool:
        """Still waiting for (part of) a request: its head or its body."""
        return self.conn.their_state in (h11.IDLE, h11.SEND_BODY)

    def _read_timed_out(self) -> None:
        self._read_deadline = None
        if self._receiving() and not self.transport.is_closing():
            self.transport.close()  # the app, if it was reading the body, sees a disconnect

    def _make_room(self) -> bool:
        """Close the connection waiting longest for a request; False when none is."""
        waiting = [
            c
            for c in self.connections
            if c is not self and isinstance(c, GuardedH11) and c._idle() and not c.transport.is_closing()
        ]
        if not waiting:
            return False
        oldest = min(waiting, key=lambda c: c._waiting_since)
        oldest.connections.discard(oldest)
        oldest.transport.close()
        return True

    def _idle(self) -> bool:
        """No request of this connection is being answered."""
        return self.conn.their_state is h11.IDLE and (self.cycle is None or self.cycle.response_complete)
