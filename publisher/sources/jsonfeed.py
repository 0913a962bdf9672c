"""JSON Feed 1.0 and 1.1 (https://jsonfeed.org/version/1.1) read into the shape
feedparser gives RSS and Atom entries, so one path turns every upstream entry into
an article.

1.0's single ``author`` object and 1.1's ``authors`` list are both read;
``content_html`` is preferred to ``content_text``; ``external_url`` is the link when
``url`` is missing; relative URLs resolve against the feed's own address.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urljoin


def looks_like_json_feed(text: str, content_type: str) -> bool:
    head = text.lstrip("\ufeff \t\r\n")[:1]
    return head == "{" or "json" in content_type.lower()


def parse_json_feed(text: str, base: str) -> tuple[list[dict[str, Any]], str | None]:
    """(entries, problem): the feed's items as feedparser-shaped dicts, or the reason
    the text is no JSON Feed."""
    try:
        doc = json.loads(text.lstrip("\ufeff"))
    except ValueError as exc:
        return [], f"not well-formed JSON ({exc})"
    if not isinstance(doc, dict) or not str(doc.get("version", "")).startswith(
        "https://jsonfeed.org/version/"
    ):
        return [], 'no JSON Feed "version"'
    items = doc.get("items")
    if not isinstance(items, list):
        return [], 'a JSON Feed without an "items" list'
    feed_authors = _authors(doc)
    return [_entry(i, base, feed_authors) for i in items if isinstance(i, dict)], None


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _url(value: Any, base: str) -> str:
    text = _str(value).strip()
    return urljoin(base, text) if text else ""


def _authors(obj: dict[str, Any]) -> list[dict[str, str]]:
    listed = obj.get("authors")
    if not isinstance(listed, list):
        listed = [obj["author"]] if isinstance(obj.get("author"), dict) else []
    people = []
    for person in listed:
        if isinstance(person, dict) and (name := _str(person.get("name")).strip()):
            people.append({"name": name})
    return people


def _entry(item: dict[str, Any], base: str, feed_authors: list[dict[str, str]]) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    if (raw_id := item.get("id")) is not None and not isinstance(raw_id, dict | list):
        entry["id"] = str(raw_id)  # 1.0 allowed numbers
    link = _url(item.get("url"), base) or _url(item.get("external_url"), base)
    if link:
        entry["link"] = link
    if title := _str(item.get("title")):
        entry["title"] = title
        entry["title_detail"] = {"type": "text/plain", "value": title}
    content = []
    if html := _str(item.get("content_html")):
        content.append({"type": "text/html", "value": html, "base": link or base})
    if text := _str(item.get("content_text")):
        content.append({"type": "text/plain", "value": text})
    if content:
        entry["content"] = content
    if summary := _str(item.get("summary")):
        entry["summary"] = summary
        entry["summary_detail"] = {"type": "text/plain", "value": summary}
    for ours, theirs in (("published", "date_published"), ("updated", "date_modified")):
        if value := _str(item.get(theirs)):
            entry[ours] = value
    entry["authors"] = _authors(item) or feed_authors
    tags = item.get("tags")
    if isinstance(tags, list):
        entry["tags"] = [{"term": t} for t in tags if isinstance(t, str)]
    links = []
    for att in item.get("attachments") or []:
        if isinstance(att, dict) and (href := _url(att.get("url"), base)):
            links.append({"rel": "enclosure", "href": href, "type": _str(att.get("mime_type"))})
    if image := _url(item.get("image") or item.get("banner_image"), base):
        entry["media_content"] = [{"url": image, "medium": "image"}]
    entry["links"] = links
    return entry
