"""The newsroom's plain-text export.

    Title on the first non-empty line
    Published: 26 May. 2025, 14:50
    Updated: 27 May. 2025, 09:10          (optional)
    One paragraph per line ...
    Translated from the JoongAng Ilbo ... edited by Korea JoongAng Daily staff.
    BY JEONG JAE-HONG [jeong.jaehong@joongang.co.kr]
    with the Korea JoongAng Daily

The trailing lines are recognised from the end: the "with the ..." tagline is
dropped, the byline becomes authors in ordinary capitalisation, and credit lines
are kept as credits rather than body text.
"""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from publisher.addresses import email_or_none
from publisher.errors import ParseError
from publisher.models import Article, Author
from publisher.sanitize import paragraphs_html
from publisher.sources.dates import parse_date
from publisher.text import name_case, single_line, summarize

_LF_LINES = re.compile(r"\r?\n")


def split_lines(text: str) -> list[str]:
    """The lines of a file by its own line ending: LF or CRLF when it has any LF, else
    CR (an old-Mac file). A lone CR inside an LF file's line is a control character
    (``single_line`` makes it a space), not a line break."""
    if "\n" in text:
        return _LF_LINES.split(text)
    return text.split("\r")


_HEADER = re.compile(r"^(Published|Updated|Date)\s*:\s*(.*)$", re.IGNORECASE)
_TAGLINE = re.compile(r"^with the\s+\S.*$", re.IGNORECASE)
_BYLINE = re.compile(r"^BY\s+(?P<names>[^\[\]]+?)\s*(?:\[(?P<emails>[^\]]*)\]+)?\s*$")
_CREDIT = re.compile(
    r"^(translated (from|by)|written by|edited by|reporting by|additional reporting|"
    r"this article (was|is)|.*\bstaff\.?$)",
    re.IGNORECASE,
)


def parse_export(text: str, *, article_id: str, source: str, tz: ZoneInfo) -> tuple[Article, list[str]]:
    """Parse one export file; return the article and warnings about it."""
    lines = [single_line(line) for line in split_lines(text.lstrip("\ufeff"))]
    while lines and not lines[0]:
        lines.pop(0)
    if not lines:
        raise ParseError("no title (the file is empty)")
    title = lines.pop(0)
    if _HEADER.match(title):
        raise ParseError("no title (the first line is a date)")

    warnings: list[str] = []
    dates: dict[str, datetime | None] = {}
    while lines and (not lines[0] or _HEADER.match(lines[0])):
        m = _HEADER.match(lines.pop(0))
        if m:
            key = "updated" if m.group(1).lower() == "updated" else "published"
            when = parse_date(m.group(2), tz)
            if when is None:
                warnings.append(f"unreadable {m.group(1)} date {m.group(2)!r}")
            dates[key] = when

    body = [line for line in lines if line]
    authors: tuple[Author, ...] = ()
    credits: list[str] = []
    while body:
        last = body[-1]
        if _TAGLINE.match(last):
            body.pop()
        elif (m := _BYLINE.match(last)) and last[:3] == "BY " and not authors:
            authors = _authors(m.group("names"), m.group("emails") or "")
            body.pop()
        elif _CREDIT.match(last) and len(last) < 300:
            credits.insert(0, body.pop())
        else:
            break
    if "published" not in dates or dates["published"] is None:
        if "published" not in dates:
            warnings.append("no Published: date")
    article = Article(
        id=article_id,
        source=source,
        title=title,
        body=paragraphs_html(body),
        published=dates.get("published"),
        updated=dates.get("updated"),
        authors=authors,
        summary=summarize(body[0]) if body else "",
        credits=tuple(credits),
    )
    return article, warnings


def _authors(names: str, emails: str) -> tuple[Author, ...]:
    people = [n for n in re.split(r"\s*,\s*|\s+AND\s+|\s*&\s*", names.strip()) if n]
    addresses = [e for e in map(email_or_none, re.split(r"[\s,;]+", emails)) if e]
    if len(addresses) != len(people):
        addresses = addresses[:1] if len(people) == 1 else []
    return tuple(
        Author(name_case(person), addresses[i] if i < len(addresses) else None)
        for i, person in enumerate(people)
    )
