"""Plain text in feeds: what readers (and the W3C validator) take for markup in a
title, a name or a category, and how each format keeps such text text. RSS cannot say
an element is plain text: its markup characters are written as hexadecimal references,
and what would still read as markup gets an invisible U+2060 WORD JOINER. Atom text
constructs say ``type="text"``, or ``type="html"`` with the text escaped."""

from __future__ import annotations

import html
import re
from html.entities import name2codepoint
from typing import Any

ATOM_NS = "http://www.w3.org/2005/Atom"


# RSS elements that hold plain text (an item's description is HTML, so it is not here).
_RSS_TEXT = re.compile(rb"<(title|dc:creator|category)>([^<]*)</\1>")
_RSS_CHANNEL_TEXT = re.compile(rb"<(title|description|dc:creator|category)>([^<]*)</\1>")


# What readers (and the validator) take for markup in plain text: an end tag ("</b>"),
# a character reference ("&amp;", "&#169"; "R&D" or "AT&T" are none).
_END_TAG = re.compile(r"</(?=\w+>)")
_ENTITY = re.compile(r"&(#?\w+)")


def _is_reference(name: str) -> bool:
    return name in name2codepoint or name == "apos" or not name.isalpha()


def reads_as_markup(text: str) -> bool:
    """True when plain text holds what a reader takes for HTML."""
    if "<" in text and _END_TAG.search(text):
        return True
    return "&" in text and any(_is_reference(n) for n in _ENTITY.findall(text))


def unmarked(text: str) -> str:
    """Plain text where nothing can say "text": an end tag or a reference gets an
    invisible U+2060 WORD JOINER after its "<" or "&", so no reader sees markup."""
    if not reads_as_markup(text):
        return text
    text = _END_TAG.sub("<\u2060/", text)
    return _ENTITY.sub(lambda m: "&\u2060" + m.group(1) if _is_reference(m.group(1)) else m.group(0), text)


def rss_plain_text(data: bytes) -> bytes:
    """An RSS document with its plain-text elements kept text (see ``_references``)."""
    head, sep, rest = data.partition(b"<item>")
    return _RSS_CHANNEL_TEXT.sub(_references, head) + sep + _RSS_TEXT.sub(_references, rest)


def _references(m: re.Match[bytes]) -> bytes:
    """RSS plain text, which cannot say it is plain: markup characters as hexadecimal
    references (shown as text by every reader), what still reads as markup unmarked."""
    text = unmarked(html.unescape(m.group(2).decode("utf-8")))
    text = text.replace("&", "&#x26;").replace("<", "&#x3C;").replace(">", "&#x3E;")
    return b"<%s>%s</%s>" % (m.group(1), text.encode("utf-8"), m.group(1))


def atom_plain_text(element: Any) -> None:
    """Atom text constructs say what they are: plain ``type="text"``, or, when the text
    reads as markup, ``type="html"`` with the text escaped (the same characters shown).
    Names and category labels have no type: what reads as markup gets a word joiner."""
    for name in ("title", "subtitle", "summary"):
        for child in _children(element, name):
            if child.text and reads_as_markup(child.text):
                child.text = html.escape(child.text, quote=False)
                child.set("type", "html")
            else:
                child.set("type", "text")
    for person in (*_children(element, "author"), *_children(element, "contributor")):
        for child in _children(person, "name"):
            child.text = unmarked(child.text or "")
    for category in _children(element, "category"):
        if category.get("label"):
            category.set("label", unmarked(category.get("label")))


def _children(element: Any, name: str) -> list[Any]:
    # feedgen builds Atom without namespaced tags (the root declares the default one)
    return [*element.findall(name), *element.findall(f"{{{ATOM_NS}}}{name}")]
