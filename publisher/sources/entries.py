"""One upstream entry (feedparser's shape; JSON Feed items are read into it) made
into an article.

Identity -- the article id is ``<source name>/<key>``, the key being the first of:

1. the entry's guid (RSS) or id (Atom, JSON Feed);
2. its link;
3. its first enclosure's URL (a podcast episode, a photo post: what the entry *is*);
4. ``sha1-`` + a digest of its publication date and title, when it has a date
   (an edited text keeps the article; a retitled one becomes new);
5. ``sha1-`` + a digest of its title and text (nothing stable is left: an edit is a
   new article).

An entry without a title (microblogs and social feeds publish none) is titled with
the first sentence of its text, shortened on a word boundary; one with neither title
nor text is skipped. Names and e-mail addresses of its authors stay apart, and all of
them are kept.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from publisher.addresses import email_or_none
from publisher.addresses import http_url as web_url
from publisher.models import Article, Author
from publisher.sanitize import clean_html, html_to_text, paragraphs_html
from publisher.sources import Entry, Skipped
from publisher.sources.dates import parse_date, sane
from publisher.sources.export import split_lines
from publisher.text import single_line, summarize, title_from_text, xml_safe


def entry_key(item: Any) -> str:
    """The stable part of the entry's article id (see the module docstring)."""
    if key := single_line(str(item.get("id") or item.get("link") or "")):
        return key
    if enclosure := _enclosure(item):
        return enclosure
    published = str(dict.get(item, "published") or dict.get(item, "updated") or "")
    title = str(item.get("title", ""))
    basis = f"{published}\n{title}" if published else f"{title}\n{item.get('summary', '')}\n{_content(item)}"
    return "sha1-" + hashlib.sha1(basis.encode("utf-8", "replace")).hexdigest()


def make_entry(
    item: Any, index: int, *, source: str, url: str, category: str, tz: ZoneInfo
) -> Entry | Skipped:
    key = entry_key(item)
    article_id = f"{source}/{key}"
    where = f"{url} entry {index + 1} ({key})"
    body = _body(item)
    summary_html = item.get("summary") or ""
    summary = summarize(html_to_text(clean_html(summary_html))) if summary_html else ""
    if not summary:
        m = re.search(r"<p>(.*?)</p>", body, re.DOTALL)
        summary = summarize(html_to_text(m.group(1) if m else body))
    title = _text(item.get("title_detail"), item.get("title", ""))
    if not title:  # from the first paragraph of the text
        first = re.search(r"<p>(.*?)</p>", body, re.DOTALL)
        title = title_from_text(html_to_text(first.group(1) if first else body) or summary)
        if not title:
            return Skipped(where, "no title and no text", article_id)
    warnings: list[str] = []
    published = _when(item, "published", tz, warnings)
    updated = _when(item, "updated", tz, warnings)
    if published is None and not dict.get(item, "published") and not dict.get(item, "updated"):
        warnings.append("no publication date")
    if published is None and updated is not None:
        published = updated
    article = Article(
        id=article_id,
        source=source,
        title=title,
        body=body,
        published=published,
        updated=updated,
        authors=authors(item),
        summary=summary,
        categories=_categories(item) or ((category,) if category else ()),
        image=_image(item),
        url=http_url(item.get("link")),
    )
    return Entry(article_id, article, warnings=tuple(warnings))


def _when(item: Any, key: str, tz: ZoneInfo, warnings: list[str]) -> datetime | None:
    raw = dict.get(item, key)  # plain dict access: no "updated" -> "published" fallback
    if not raw:
        return None
    when = parse_date(str(raw), tz)
    parsed = dict.get(item, f"{key}_parsed")
    if when is None and parsed:
        try:
            when = sane(datetime(*parsed[:6], tzinfo=UTC))
        except (TypeError, ValueError):
            when = None
    if when is None:
        warnings.append(f"unreadable {key} date {raw!r}")
    return when.replace(microsecond=0) if when else None


def _text(detail: Any, value: str) -> str:
    """Plain single-line text of a feed text construct (titles may hold markup)."""
    kind = (detail or {}).get("type", "text/plain")
    text = html_to_text(clean_html(value)) if "html" in kind else value
    return single_line(text)


def _content(item: Any) -> str:
    return "".join(str(c.get("value") or "") for c in item.get("content") or [])


def _body(item: Any) -> str:
    contents = item.get("content") or []
    chosen = next((c for c in contents if "html" in c.get("type", "")), contents[0] if contents else None)
    if chosen is None or not str(chosen.get("value") or "").strip():
        detail = item.get("summary_detail") or {"type": "text/html"}
        chosen = {"type": detail.get("type", "text/html"), "value": item.get("summary", "")}
    value = xml_safe(str(chosen.get("value") or ""))
    if "html" not in chosen.get("type", "text/html"):
        return paragraphs_html([p for p in (single_line(x) for x in split_lines(value)) if p])
    return clean_html(value)


def authors(item: Any) -> tuple[Author, ...]:
    """Every author of the entry, name and e-mail apart (``upstream`` read them)."""
    people: list[Author] = []
    for person in item.get("authors") or []:
        name = single_line(str(person.get("name") or ""))
        email = single_line(str(person.get("email") or ""))
        email = email_or_none(email) or ""
        if not name and not email:
            continue
        author = Author(name or email, email or None)  # an address alone is all there is to show
        if author not in people:
            people.append(author)
    return tuple(people)


def _categories(item: Any) -> tuple[str, ...]:
    names: list[str] = []
    for tag in item.get("tags") or []:
        name = single_line(str(tag.get("label") or tag.get("term") or ""))
        if name and name not in names:
            names.append(name)
    return tuple(names)


def _enclosure(item: Any) -> str | None:
    for link in item.get("links") or []:
        if link.get("rel") == "enclosure" and (href := single_line(str(link.get("href") or ""))):
            return href
    for media in item.get("media_content") or []:
        if url := single_line(str(media.get("url") or "")):
            return url
    return None


def _image(item: Any) -> str | None:
    for media in (*(item.get("media_thumbnail") or []), *(item.get("media_content") or [])):
        if media.get("medium", "image") == "image" and (url := http_url(media.get("url"))):
            return url
    for link in item.get("links") or []:
        if link.get("rel") == "enclosure" and str(link.get("type", "")).startswith("image/"):
            if url := http_url(link.get("href")):
                return url
    return None


def http_url(value: Any) -> str | None:
    return web_url(single_line(str(value or "")))
