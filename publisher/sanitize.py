"""Untrusted HTML in, safe HTML out (nh3, an allow-list suited to news).

No script, style, iframe, form or event handler survives; links and images keep
only http(s) and mailto URLs; characters XML forbids are removed so feeds stay
well-formed. Every body passes here before it is stored.
"""

from __future__ import annotations

import html
import re

import nh3

from publisher.text import xml_safe

TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "del", "dl", "dt",
    "em", "figcaption", "figure", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd",
    "li", "mark", "ol", "p", "pre", "q", "s", "small", "strong", "sub", "sup", "table",
    "tbody", "td", "tfoot", "th", "thead", "time", "tr", "u", "ul",
}  # fmt: skip
ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "abbr": {"title"},
    "blockquote": {"cite"},
    "q": {"cite"},
    "time": {"datetime"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
}
URL_SCHEMES = {"http", "https", "mailto"}
# Dropped with everything inside them (other disallowed tags keep their text).
CLEAN_CONTENT_TAGS = {"script", "style", "iframe", "object", "embed", "noscript", "template", "svg", "math"}


def clean_html(fragment: str) -> str:
    """Sanitise an HTML fragment for feeds, pages and email."""
    # Before: so nothing forbidden is parsed; after: character references such as
    # "&#1;" are decoded by the HTML parser and written back as raw characters.
    cleaned = nh3.clean(
        xml_safe(fragment),
        tags=TAGS,
        clean_content_tags=CLEAN_CONTENT_TAGS,
        attributes=ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer",
        strip_comments=True,
    )
    return xml_safe(cleaned).lstrip("\ufeff")  # a byte order mark is no content


def paragraphs_html(paragraphs: list[str]) -> str:
    """Plain-text paragraphs as escaped ``<p>`` elements."""
    return "\n".join(f"<p>{html.escape(xml_safe(p), quote=False)}</p>" for p in paragraphs)


# Where one block of text ends and the next begins: a space, so "<p>a</p><p>b</p>" reads "a b".
_BLOCK_END = re.compile(
    r"<(?:br|hr|/(?:p|li|h[1-6]|div|blockquote|tr|td|th|dd|dt|figcaption|pre))\b[^>]*>(?=\s*\S)", re.I
)


def html_to_text(fragment: str) -> str:
    """Visible text of an HTML fragment (for summaries), tags removed, entities decoded."""
    fragment = _BLOCK_END.sub(r"\g<0> ", fragment) if "<" in fragment else fragment
    stripped = nh3.clean(fragment, tags=set(), attributes={}, clean_content_tags=CLEAN_CONTENT_TAGS)
    return xml_safe(html.unescape(stripped))
