"""Markdown articles with TOML front matter between ``+++`` lines.

+++
title = "..."
published = 2025-06-02T09:00:00+09:00   # a TOML datetime or a string
updated = ...                            # optional
authors = ["Kim Min-ji", { name = "Lee Ha-eun", email = "lee@example.com" }]
tags = ["Culture"]
summary = "..."                          # default: the first paragraph
image = "https://..."                    # optional
url = "https://..."                      # optional canonical URL
+++
Body in Markdown.
"""

from __future__ import annotations

import re
import tomllib
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from markdown_it import MarkdownIt

from publisher.addresses import email_or_none, http_url
from publisher.errors import ParseError
from publisher.models import Article, Author
from publisher.sanitize import clean_html, html_to_text
from publisher.sources.dates import parse_date, sane
from publisher.sources.export import split_lines
from publisher.text import single_line, summarize

_md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable("table")
_KEYS = {
    "title",
    "published",
    "updated",
    "date",
    "authors",
    "author",
    "tags",
    "categories",
    "summary",
    "image",
    "url",
}


def parse_markdown(text: str, *, article_id: str, source: str, tz: ZoneInfo) -> tuple[Article, list[str]]:
    lines = [line.replace("\r", " ") for line in split_lines(text.lstrip("\ufeff"))]
    while lines and not lines[0].strip():
        lines.pop(0)
    if not lines or lines[0].strip() != "+++":
        raise ParseError("no front matter (the file must start with a +++ line)")
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "+++")
    except StopIteration:
        raise ParseError("front matter is not closed by a +++ line") from None
    try:
        meta = tomllib.loads("\n".join(lines[1:end]))
    except tomllib.TOMLDecodeError as exc:
        raise ParseError(f"front matter is not valid TOML: {exc}") from None
    except RecursionError:
        raise ParseError("front matter is not valid TOML: arrays or tables nested too deeply") from None
    warnings = [f"unknown front matter key {k!r} ignored" for k in meta if k not in _KEYS]

    title = single_line(_str(meta.get("title", "")))
    if not title:
        raise ParseError("no title in the front matter")
    published = _when(meta.get("published", meta.get("date")), tz, "published", warnings)
    if published is None and "published" not in meta and "date" not in meta:
        warnings.append("no published date in the front matter")
    updated = _when(meta.get("updated"), tz, "updated", warnings)

    body = clean_html(_md.render("\n".join(lines[end + 1 :])))
    summary = single_line(_str(meta.get("summary", ""))) or summarize(_first_paragraph(body))
    tags = _listed(meta.get("tags", meta.get("categories", [])))
    authors = _listed(meta.get("authors", meta.get("author", [])))
    article = Article(
        id=article_id,
        source=source,
        title=title,
        body=body,
        published=published,
        updated=updated,
        authors=tuple(a for a in (_author(x) for x in authors) if a),
        summary=summary,
        categories=tuple(t for t in (single_line(_str(x)) for x in tags) if t),
        image=_url(meta.get("image")),
        url=_url(meta.get("url")),
    )
    return article, warnings


def _str(value: Any) -> str:
    """A front matter scalar as text; tables, arrays and dates are not text."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return ""


def _listed(value: Any) -> list[Any]:
    """A key that takes one value or an array of them."""
    if isinstance(value, list):
        return value
    return [] if value is None else [value]


def _when(value: Any, tz: ZoneInfo, key: str, warnings: list[str]) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        parsed = sane(value if value.tzinfo else value.replace(tzinfo=tz))
    elif isinstance(value, date):
        parsed = sane(datetime.combine(value, time(), tzinfo=tz))
    else:
        parsed = parse_date(_str(value), tz)
    if parsed is None:
        warnings.append(f"unreadable {key} date {value!r}")
    return parsed


def _author(value: Any) -> Author | None:
    if isinstance(value, dict):
        name = single_line(_str(value.get("name", "")))
        email = email_or_none(single_line(_str(value.get("email", ""))))
        return Author(name, email) if name else None
    name = single_line(_str(value))
    return Author(name) if name else None


def _url(value: Any) -> str | None:
    return http_url(single_line(_str(value)))


def _first_paragraph(body_html: str) -> str:
    m = re.search(r"<p>(.*?)</p>", body_html, re.DOTALL)
    return html_to_text(m.group(1)) if m else ""
