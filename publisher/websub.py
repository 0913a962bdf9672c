"""WebSub publishing: tell the hub which feeds changed, so subscribers hear at once.

One form POST per changed feed (``hub.mode=publish``, ``hub.url=<feed URL>``), the
way WebSub hubs (and the older PubSubHubbub ones) expect it. A hub that is down or
refuses is logged and the run goes on: a late ping only delays readers, who still
poll the feed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

log = logging.getLogger(__name__)

TIMEOUT = 10.0  # seconds for an answer
CONNECT_TIMEOUT = 5.0


def announce(hub: str, feed_urls: Sequence[str]) -> int:
    """Announce ``feed_urls`` to ``hub``; return how many the hub accepted (2xx)."""
    import httpx  # only when feeds changed: importing httpx takes a while

    timeout = httpx.Timeout(TIMEOUT, connect=CONNECT_TIMEOUT)
    accepted = 0
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False) as client:
            for url in feed_urls:
                try:
                    response = client.post(hub, data={"hub.mode": "publish", "hub.url": url})
                except httpx.HTTPError as exc:
                    log.warning("WebSub hub %s unreachable for %s: %s", hub, url, exc)
                    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
                        break  # the hub is down: do not wait on it once per feed
                    continue
                if response.is_success:
                    accepted += 1
                else:
                    log.warning("WebSub hub %s refused %s: HTTP %s", hub, url, response.status_code)
    except Exception as exc:  # a ping must never fail a publishing run
        log.warning("WebSub announcement to %s failed: %s", hub, exc)
    return accepted
