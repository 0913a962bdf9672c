"""An upstream RSS or Atom feed (``type = "feed"``), fetched with httpx, parsed with
feedparser.

The fetch is polite and bounded: a User-Agent naming publisher, a conditional GET
with the ETag and Last-Modified of the last good fetch (kept in the store as the
source's state), at most 5 redirects, ``timeout`` seconds for each wait on the
server and three times that for the whole download, and at most ``max_feed_bytes``
after decompression. Any failure raises ``SourceError`` with the URL and the reason,
so the run reports this source and goes on with the others.

Reading the document (RSS, Atom, JSON Feed; its encoding) is ``upstream``'s part;
making each entry an article, and the identity it goes by, is ``entries``'. Their HTML
passes the sanitiser like every other body. A feed only shows its recent entries, so
an entry that leaves it is not withdrawn.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import httpx

from publisher import __version__
from publisher.config import SourceConfig
from publisher.errors import SourceError
from publisher.sources import Entry, KnownState, Skipped, source_name
from publisher.sources.entries import make_entry
from publisher.sources.upstream import read_feed
from publisher.text import single_line

log = logging.getLogger(__name__)

USER_AGENT = f"publisher/{__version__} (feed collector; +https://github.com/publisher)"
ACCEPT = (
    "application/atom+xml, application/rss+xml, application/feed+json, "
    "application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.9, */*;q=0.5"
)
MAX_REDIRECTS = 5


@dataclass(frozen=True)
class Fetched:
    """What the server answered: a new body, or 304 (``body`` is None)."""

    url: str  # after redirects
    body: bytes | None
    headers: dict[str, str]


def fetch(url: str, state: dict[str, str], *, timeout: float, max_bytes: int) -> Fetched:
    """GET ``url`` conditionally; raise SourceError on anything but 200 or 304."""
    headers = {"User-Agent": USER_AGENT, "Accept": ACCEPT}
    if state.get("etag"):
        headers["If-None-Match"] = state["etag"]
    if state.get("last_modified"):
        headers["If-Modified-Since"] = state["last_modified"]
    deadline = time.monotonic() + 3 * timeout
    try:
        with (
            httpx.Client(
                timeout=httpx.Timeout(timeout), follow_redirects=True, max_redirects=MAX_REDIRECTS
            ) as client,
            client.stream("GET", url, headers=headers) as resp,
        ):
            for hop in resp.history:
                if hop.status_code in (301, 308):
                    log.warning(
                        "%s moved permanently to %s: update the source's url",
                        url,
                        hop.headers.get("location"),
                    )
            final = str(resp.url)
            if resp.status_code == 304:
                return Fetched(final, None, dict(resp.headers))
            if resp.status_code != 200:
                raise SourceError(f"{url}: HTTP {resp.status_code} {resp.reason_phrase}".rstrip())
            declared = resp.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise SourceError(f"{url}: too large ({declared} bytes, limit max_feed_bytes = {max_bytes})")
            chunks, total = [], 0
            for chunk in resp.iter_bytes():
                total += len(chunk)
                if total > max_bytes:
                    raise SourceError(f"{url}: too large (over max_feed_bytes = {max_bytes} bytes)")
                if time.monotonic() > deadline:
                    raise SourceError(f"{url}: download took longer than {3 * timeout:g} s")
                chunks.append(chunk)
            return Fetched(final, b"".join(chunks), dict(resp.headers))
    except httpx.TimeoutException:
        raise SourceError(f"{url}: no answer within {timeout:g} s") from None
    except httpx.TooManyRedirects:
        raise SourceError(f"{url}: more than {MAX_REDIRECTS} redirects") from None
    except httpx.HTTPError as exc:
        raise SourceError(f"{url}: {type(exc).__name__}: {exc}") from None


class FeedSource:
    withdraws_missing = False

    def __init__(self, cfg: SourceConfig, tz: ZoneInfo, state: dict[str, str] | None = None) -> None:
        self.cfg = cfg
        self.url = cfg.url
        self.tz = tz
        self.name = source_name(cfg)
        self.state: dict[str, str] = dict(state or {})

    def scan(self, known: dict[str, KnownState]) -> Iterator[Entry | Skipped]:
        got = fetch(self.url, self.state, timeout=self.cfg.timeout, max_bytes=self.cfg.max_feed_bytes)
        if got.body is None:  # 304: nothing changed upstream
            for article_id, state in known.items():
                if not state.withdrawn:
                    yield Entry(article_id, None)
            return
        items, note = read_feed(
            self.url, got.body, got.headers.get("content-type", "application/xml"), got.url
        )
        if note:
            log.info("%s: %s", self.url, note)
        ids: set[str] = set()
        for i, item in enumerate(items):
            try:
                event = make_entry(
                    item, i, source=self.name, url=self.url, category=self.cfg.category, tz=self.tz
                )
            except Exception as exc:  # a parser bug must cost one entry, not the source
                log.exception("%s entry %d: unexpected error", self.url, i + 1)
                event = Skipped(
                    f"{self.url} entry {i + 1}", f"could not be read ({type(exc).__name__}: {exc})"
                )
            if event.id in ids:
                yield Skipped(f"{self.url} entry {i + 1}", f"repeats the id of an earlier entry ({event.id})")
                continue
            if event.id is not None:
                ids.add(event.id)
            yield event
        self.state = {k: v for k, v in self._validators(got.headers).items() if v}

    @staticmethod
    def _validators(headers: dict[str, str]) -> dict[str, str]:
        return {
            "etag": single_line(headers.get("etag", "")),
            "last_modified": single_line(headers.get("last-modified", "")),
        }
