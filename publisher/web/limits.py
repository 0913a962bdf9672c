"""Who a client is and how often it may ask: the per-client limit of the subscribe form
(the per-address limit lives in the store: ``Subscribers.allow_request``)."""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict

from starlette.requests import Request

HOUR = 3600.0


class ClientLimiter:
    """At most ``limit`` hits per key (a client address) in a fixed window.

    Keys are kept in the order their windows started, so expired ones are dropped from
    the front as new hits arrive: O(1) amortised per hit, never a rebuild of the table.
    At most ``max_keys`` are kept; past that the oldest window is forgotten early."""

    def __init__(self, limit: int, window: float = HOUR, max_keys: int = 100_000) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._hits: OrderedDict[str, list[float]] = OrderedDict()  # key -> [start, count]

    def hit(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        hits = self._hits
        while hits:
            oldest = next(iter(hits.values()))
            if now - oldest[0] < self.window and len(hits) < self.max_keys:
                break
            hits.popitem(last=False)
        entry = hits.get(key)
        if entry is None:
            hits[key] = [now, 1]
            return True
        if entry[1] >= self.limit:
            return False
        entry[1] += 1
        return True

    def __len__(self) -> int:
        return len(self._hits)


def client_key(request: Request) -> str:
    """Who a client is for the rate limit: its IPv4 address, or its IPv6 /64 (one
    machine commonly holds a whole /64, so single IPv6 addresses are free to rotate)."""
    host = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host or "unknown"
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is None:
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address.ipv4_mapped or address) if isinstance(address, ipaddress.IPv6Address) else str(address)
