"""A downloaded upstream feed read into entries: RSS 0.9x-2.0, RSS 1.0 and Atom via
feedparser, JSON Feed 1.0/1.1 via ``jsonfeed``.

The bytes are decoded here first (``decode_document``: UTF-8, else the declared
encoding as the Encoding Standard reads it -- EUC-KR as CP949, ISO-8859-1 as
Windows-1252 --, else detection) and handed to feedparser as UTF-8, so a Korean
paper that declares EUC-KR but writes CP949 syllables, or a server that calls every
file ISO-8859-1, still reads right.

feedparser gets people wrong (it splits "kim@news.example.museum (Kim)" inside the
address, keeps only the last of several RSS ``<author>`` elements and lends one Atom
author's e-mail to the next), so each entry's authors are read again from the XML
itself (lxml, recovering from errors), each with its own name and e-mail, in order:
``authors`` in every entry is then a list of {"name", "email"} dicts.
"""

from __future__ import annotations

import re
from typing import Any

import feedparser
from lxml import etree

from publisher.addresses import email_or_none
from publisher.errors import SourceError
from publisher.sources.decode import decode_document
from publisher.sources.jsonfeed import looks_like_json_feed, parse_json_feed

# Character references to UTF-16 surrogates (&#xD800; ... &#57343;) make feedparser
# raise; they stand for no character, so they become U+FFFD first.
_SURROGATE_REFS = re.compile(
    r"&#(?:[xX]0*[dD][89a-fA-F][0-9a-fA-F]{2}|0*(?:5529[6-9]|55[3-9]\d\d|56\d\d\d|57[0-2]\d\d|573[0-3]\d|5734[0-3]));"
)
_DECLARATION = re.compile(r"""^(\s*<\?xml[^>]*?\bencoding\s*=\s*["'])[^"']*(["'])""")
_ATOM = "http://www.w3.org/2005/Atom"
_ATOM03 = "http://purl.org/atom/ns#"
_DC = "http://purl.org/dc/elements/1.1/"


def read_feed(url: str, body: bytes, content_type: str, location: str) -> tuple[list[Any], str | None]:
    """(entries, decoding note) of a downloaded feed; SourceError when it is none."""
    text, note = decode_document(body, content_type)
    if text is None:
        raise SourceError(f"{url}: not a feed ({note})")
    if looks_like_json_feed(text, content_type):
        entries, problem = parse_json_feed(text, location)
        if problem is None:
            return entries, note
        if text.lstrip("\ufeff \t\r\n")[:1] == "{":
            raise SourceError(f"{url}: not a feed ({problem})")
    text = _SURROGATE_REFS.sub("&#xFFFD;", text)
    text = _DECLARATION.sub(r"\g<1>utf-8\g<2>", text, count=1)
    data = text.encode("utf-8")
    media_type = content_type.split(";", 1)[0].strip() or "application/xml"
    try:
        parsed = feedparser.parse(
            data,
            response_headers={"content-type": f"{media_type}; charset=utf-8", "content-location": location},
        )
    except Exception as exc:  # feedparser's own failures on malformed input
        raise SourceError(f"{url}: the feed could not be parsed ({type(exc).__name__}: {exc})") from None
    if not parsed.get("version") and not parsed.entries:
        problem = parsed.get("bozo_exception") or "no RSS, Atom or JSON Feed document"
        raise SourceError(f"{url}: not a feed ({problem})")
    people = _people(data)
    if people is not None and len(people) == len(parsed.entries):
        for entry, authors in zip(parsed.entries, people, strict=True):
            entry["authors"] = authors
    else:  # the XML could not be read again: feedparser's reading, the address split off
        for entry in parsed.entries:
            entry["authors"] = [_person(entry.get("author"))] if entry.get("author") else []
    return parsed.entries, note


def _people(data: bytes) -> list[list[dict[str, str]]] | None:
    """Each entry's authors, in document order, or None when the XML cannot be read."""
    try:
        parser = etree.XMLParser(recover=True, resolve_entities=False, no_network=True, huge_tree=False)
        root = etree.fromstring(data, parser)
    except (etree.XMLSyntaxError, ValueError):
        return None
    if root is None:
        return None
    out = []
    for item in root.iter("{*}item", f"{{{_ATOM}}}entry", f"{{{_ATOM03}}}entry"):
        if not isinstance(item.tag, str):
            continue
        people: list[dict[str, str]] = []
        for child in item:
            if not isinstance(child.tag, str):
                continue
            tag = etree.QName(child).localname
            ns = etree.QName(child).namespace
            if tag == "author" and ns in (_ATOM, _ATOM03):
                person = {
                    "name": _text(child.find(f"{{{ns}}}name")),
                    "email": _text(child.find(f"{{{ns}}}email")),
                }
            elif tag == "author" and ns is None or tag == "creator" and ns == _DC:
                person = _person(_text(child))
            else:
                continue
            if person.get("name") or person.get("email"):
                people.append(person)
        out.append(people)
    return out


def _text(element: Any) -> str:
    return " ".join("".join(element.itertext()).split()) if element is not None else ""


def _person(raw: str) -> dict[str, str]:
    """RSS's forms: "kim@host (Kim)", "Kim <kim@host>", "kim@host", "Kim"."""
    raw = " ".join(str(raw).split())
    if m := re.match(r"^([^\s()<>]+@[^\s()<>]+)\s*\((.*)\)$", raw):
        return {"name": m.group(2).strip(), "email": m.group(1)}
    if m := re.match(r"^(.*?)\s*<([^<>\s]+@[^<>\s]+)>$", raw):
        return {"name": m.group(1).strip().strip('"'), "email": m.group(2)}
    if m := re.match(r"^(.*?)\s*\(([^()\s]+@[^()\s]+)\)$", raw):  # "Kim (kim@host)"
        return {"name": m.group(1).strip(), "email": m.group(2)}
    if email_or_none(raw):
        return {"name": "", "email": raw}
    return {"name": raw, "email": ""}
