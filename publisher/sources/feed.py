"""An upstream RSS or Atom feed (``type = "feed"``), fetched with httpx, parsed with
feedparser.

The fetch is polite and bounded: a User-Agent naming publisher, a conditional GET
with the ETag and Last-Modified of the last good fetch (kept in the store as the
source's state), at most 5 redirects, ``timeout`` seconds for each wait on the
server and three times that for the whole download, and at most ``max_feed_bytes``
after decompression. Any failure raises ``SourceError`` with the URL and the reason,
so the run reports this source and goes on with the others.

Entries become articles under the id ``<source name>/<entry id>`` (the entry's
guid/id, else its link). Their HTML passes the sanitiser like every other body. A
feed only shows its recent entries, so an entry that leaves it is not withdrawn.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import feedparser
import httpx

from publisher import __version__
from publisher.addresses import email_or_none, http_url
from publisher.config import SourceConfig
from publisher.models import Article, Author
from publisher.sanitize import clean_html, html_to_text, paragraphs_html
from publisher.sources import Entry, KnownState, Skipped, SourceError, source_name
from publisher.sources.dates import parse_date, sane
from publisher.sources.export import split_lines
from publisher.text import single_line, summarize

log = logging.getLogger(__name__)

USER_AGENT = f"publisher/{__version__} (feed collector; +https://github.com/publisher)"
ACCEPT = "application/atom+xml, application/rss+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
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


# Character references to UTF-16 surrogates (&#xD800; ... &#57343;) make feedparser
# raise; they stand for no character, so they become U+FFFD first.
_SURROGATE_REFS = re.compile(
    rb"&#(?:[xX]0*[dD][89a-fA-F][0-9a-fA-F]{2}|0*(?:5529[6-9]|55[3-9]\d\d|56\d\d\d|57[0-2]\d\d|573[0-3]\d|5734[0-3]));"
)


def parse_feed(url: str, body: bytes, content_type: str, location: str) -> Any:
    """feedparser's reading of a downloaded feed; SourceError when it is none."""
    body = _SURROGATE_REFS.sub(b"&#xFFFD;", body)
    try:
        parsed = feedparser.parse(
            body, response_headers={"content-type": content_type, "content-location": location}
        )
    except Exception as exc:  # feedparser's own failures on malformed input
        raise SourceError(f"{url}: the feed could not be parsed ({type(exc).__name__}: {exc})") from None
    if not parsed.get("version") and not parsed.entries:
        problem = parsed.get("bozo_exception") or "no RSS or Atom document"
        raise SourceError(f"{url}: not a feed ({problem})")
    return parsed


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
        parsed = parse_feed(self.url, got.body, got.headers.get("content-type", "application/xml"), got.url)
        ids: set[str] = set()
        for i, item in enumerate(parsed.entries):
            try:
                event = self._entry(item, i)
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

    def _entry(self, item: Any, index: int) -> Entry | Skipped:
        key = single_line(item.get("id") or item.get("link") or "")
        if not key:
            basis = f"{item.get('title', '')}\n{item.get('published', '')}\n{item.get('summary', '')}"
            key = "sha1-" + hashlib.sha1(basis.encode("utf-8", "replace")).hexdigest()
        article_id = f"{self.name}/{key}"
        where = f"{self.url} entry {index + 1} ({key})"
        title = _text(item.get("title_detail"), item.get("title", ""))
        if not title:
            return Skipped(where, "no title", article_id)
        body = _body(item)
        warnings: list[str] = []
        published = self._when(item, "published", warnings)
        updated = self._when(item, "updated", warnings)
        if published is None and not dict.get(item, "published") and not dict.get(item, "updated"):
            warnings.append("no publication date")
        if published is None and updated is not None:
            published = updated
        summary_html = item.get("summary") or ""
        summary = summarize(html_to_text(clean_html(summary_html))) if summary_html else ""
        if not summary:
            m = re.search(r"<p>(.*?)</p>", body, re.DOTALL)
            summary = summarize(html_to_text(m.group(1) if m else body))
        article = Article(
            id=article_id,
            source=self.name,
            title=title,
            body=body,
            published=published,
            updated=updated,
            authors=_authors(item),
            summary=summary,
            categories=_categories(item) or ((self.cfg.category,) if self.cfg.category else ()),
            image=_image(item),
            url=_http_url(item.get("link")),
        )
        return Entry(article_id, article, warnings=tuple(warnings))

    def _when(self, item: Any, key: str, warnings: list[str]) -> datetime | None:
        raw = dict.get(item, key)  # plain dict access: no "updated" -> "published" fallback
        if not raw:
            return None
        when = parse_date(str(raw), self.tz)
        parsed = dict.get(item, f"{key}_parsed")
        if when is None and parsed:
            try:
                when = sane(datetime(*parsed[:6], tzinfo=UTC))
            except (TypeError, ValueError):
                when = None
        if when is None:
            warnings.append(f"unreadable {key} date {raw!r}")
        return when


def _text(detail: Any, value: str) -> str:
    """Plain single-line text of a feed text construct (titles may hold markup)."""
    kind = (detail or {}).get("type", "text/plain")
    text = html_to_text(clean_html(value)) if "html" in kind else value
    return single_line(text)


def _body(item: Any) -> str:
    contents = item.get("content") or []
    chosen = next((c for c in contents if "html" in c.get("type", "")), contents[0] if contents else None)
    if chosen is None:
        detail = item.get("summary_detail") or {"type": "text/html"}
        chosen = {"type": detail.get("type", "text/html"), "value": item.get("summary", "")}
    value = chosen.get("value") or ""
    if "html" not in chosen.get("type", "text/html"):
        return paragraphs_html([p for p in (single_line(x) for x in split_lines(value)) if p])
    return clean_html(value)


def _authors(item: Any) -> tuple[Author, ...]:
    raw = dict.get(item, "author")
    listed = item.get("authors") or []
    if isinstance(raw, str) and len(listed) <= 1:
        # feedparser splits "user@host.example (Name)" wrongly when the domain's
        # last label is long; RSS's two usual forms are read here instead.
        raw = single_line(raw)
        if m := re.match(r"^([^\s()<>]+@[^\s()<>]+)\s*\((.*)\)$", raw):
            listed = [{"name": m.group(2), "email": m.group(1)}]
        elif m := re.match(r"^(.*?)\s*<([^<>\s]+@[^<>\s]+)>$", raw):
            listed = [{"name": m.group(1), "email": m.group(2)}]
        elif raw:
            listed = [{"email": raw} if email_or_none(raw) else {"name": raw}]
    people = []
    for person in listed:
        name = single_line(str(person.get("name") or ""))
        email = single_line(str(person.get("email") or ""))
        email = email_or_none(email) or ""
        if name or email:
            people.append(Author(name or email, email or None))
    return tuple(people)


def _categories(item: Any) -> tuple[str, ...]:
    names: list[str] = []
    for tag in item.get("tags") or []:
        name = single_line(str(tag.get("label") or tag.get("term") or ""))
        if name and name not in names:
            names.append(name)
    return tuple(names)


def _image(item: Any) -> str | None:
    for media in (*(item.get("media_thumbnail") or []), *(item.get("media_content") or [])):
        if media.get("medium", "image") == "image" and (url := _http_url(media.get("url"))):
            return url
    for link in item.get("links") or []:
        if link.get("rel") == "enclosure" and str(link.get("type", "")).startswith("image/"):
            if url := _http_url(link.get("href")):
                return url
    return None


def _http_url(value: Any) -> str | None:
    return http_url(single_line(str(value or "")))
