"""Feeds: RSS 2.0 and Atom 1.0 (feedgen) and JSON Feed 1.1, for the site and per category.

``WRITERS`` maps each of ``links.FORMATS`` (by file name) to its writer; every channel (the whole site,
then each category under ``categories/<slug>/``) gets every format. Each article is
turned into one ``Item`` once (ids, absolute links, local dates, sanitised content)
and every format writes that same item, so all readers get the same feed.

The bar is the W3C Feed Validation Service: no errors, no warnings. feedgen's quirks
are handled here only (plain text that reads as markup: ``publisher.feedtext``):

- it raises ValueError on characters XML forbids: every string passes ``xml_safe``;
- it stamps lastBuildDate with the current time: we pin it (and Atom ``updated``) to
  the newest content change, so a run that changes nothing writes identical bytes;
- it rejects naive datetimes; dates are written in the site's timezone;
- its RSS channel ``<link>`` is the last link added, so the self link goes first;
- RSS ``<author>`` must be an email address, so RSS names go in ``dc:creator`` and
  only Atom and JSON Feed carry author entries; an Atom entry without authors
  falls back to the feed-level author (the publication). Of several ``dc:creator``
  elements readers (newsboat, feedparser's ``author``) show only the last, so one
  ``dc:creator`` names every author, joined with ", " as newsboat joins Atom's;
- RSS says nothing of a title's type, so ``<``, ``>`` and ``&`` in titles (and the
  other plain-text elements: the channel description, ``dc:creator``, ``category``)
  are written as hexadecimal character references (``&#x3C;``), which readers show
  as text; Atom
  titles carry an explicit ``type="text"``. A title that holds an HTML end tag as
  text ("Why </b> matters") or a character reference ("&amp;") is taken for markup
  by the validator either way: Atom
  writes it as ``type="html"`` with the text escaped (shown as the same characters),
  RSS puts U+2060 WORD JOINER (invisible) after its ``<`` so no reader sees a tag;
- an item without a summary or content has no empty ``<description/>``,
  ``<summary/>`` or ``<content/>`` (an Atom entry with neither gets its title as
  summary, as Atom asks for some text);
- every date is written in whole seconds (newsboat misreads fractions);
- the validator wants every Atom entry's ``updated`` text distinct, and a newsroom
  publishes several articles in the same minute: an entry whose time another entry
  already shows is written at another UTC offset (the same instant, spelled
  differently), so readers see the exact time and the validator no duplicate.
"""

from __future__ import annotations

import html
import json
import mimetypes
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from itertools import chain
from typing import Any
from urllib.parse import urljoin, urlsplit

from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.feed import FeedGenerator
from feedgen.util import xml_elem

from publisher import __version__
from publisher.addresses import email_or_none, http_url
from publisher.categories import group
from publisher.config import Config
from publisher.feedtext import ATOM_NS, atom_plain_text, rss_plain_text
from publisher.links import FORMATS, MEDIA_TYPES, Links
from publisher.models import StoredArticle
from publisher.sanitize import clean_html, html_to_text
from publisher.text import single_line, summarize, xml_safe

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
GENERATOR_URI = "https://pypi.org/project/publisher/"
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"


@dataclass(frozen=True)
class Author:
    name: str
    email: str | None


@dataclass(frozen=True)
class Image:
    url: str
    type: str | None


@dataclass(frozen=True)
class Item:
    """One article as every feed format writes it."""

    id: str
    title: str
    link: str
    published: datetime  # in the site's timezone
    updated: datetime
    authors: tuple[Author, ...]
    categories: tuple[str, ...]
    summary: str
    content: str  # sanitised HTML
    image: Image | None


@dataclass(frozen=True)
class Channel:
    """One set of feeds: the whole site (``category`` None) or one category."""

    title: str
    description: str
    home: str  # the HTML page this channel mirrors
    category: str | None  # the category slug
    items: tuple[Item, ...]

    @property
    def updated(self) -> datetime:
        """The newest content change: moves only when an item of this channel changes."""
        return max((i.updated for i in self.items), default=EPOCH)


@dataclass(frozen=True)
class Context:
    config: Config
    links: Links

    def self_url(self, channel: Channel, name: str) -> str:
        return self.links.feed(name, channel.category)

    @property
    def hub(self) -> str | None:
        return http_url(self.config.feeds.websub_hub)

    @property
    def icon(self) -> str | None:
        return http_url(self.config.feeds.icon, self.links.base)

    @property
    def logo(self) -> str | None:
        return http_url(self.config.feeds.logo, self.links.base)


def item(stored: StoredArticle, links: Links, tz: tzinfo) -> Item:
    """The feed view of one article: everything cleaned, made absolute and localised."""
    a = stored.article
    link = links.article(stored)
    # Credit lines (e.g. "Translated from the JoongAng Ilbo using generative AI ...")
    # travel with the text, as on the article page: a reader in a feed reader sees them too.
    credits = "".join(f"\n<p><em>{html.escape(xml_safe(c), quote=False)}</em></p>" for c in a.credits)
    content = absolute_urls(clean_html(a.body + credits), link)
    summary = single_line(xml_safe(a.summary)) or summarize(html_to_text(content))
    image = links.image(stored)
    return Item(
        id=links.guid(stored),
        title=single_line(xml_safe(a.title)) or "(untitled)",
        link=link,
        published=whole_seconds(stored.published).astimezone(tz),
        updated=whole_seconds(max(stored.updated, stored.published)).astimezone(tz),
        authors=tuple(
            Author(name, email_or_none(x.email)) for x in a.authors if (name := single_line(xml_safe(x.name)))
        ),
        categories=tuple(dict.fromkeys(c for x in a.categories if (c := single_line(xml_safe(x))))),
        summary=summary,
        content=content,
        image=Image(image, _image_type(image)) if image else None,
    )


def whole_seconds(when: datetime) -> datetime:
    return when.replace(microsecond=0)


_URL_ATTR = re.compile(r'(\s(?:href|src|cite)=")([^"]*)(")')


def absolute_urls(fragment: str, base: str) -> str:
    """Relative ``href``/``src`` URLs made absolute, as feed readers need them."""

    def fix(m: re.Match[str]) -> str:
        value = html.unescape(m.group(2))
        if urlsplit(value).scheme:
            return m.group(0)
        return m.group(1) + html.escape(urljoin(base, value), quote=True) + m.group(3)

    return _URL_ATTR.sub(fix, fragment) if "=" in fragment else fragment


def _image_type(url: str) -> str | None:
    kind, _ = mimetypes.guess_type(urlsplit(url).path)
    return kind if kind and kind.startswith("image/") else None


def _feedgen(ctx: Context, channel: Channel, name: str) -> FeedGenerator:
    """The channel-level part shared by RSS and Atom."""
    site = ctx.config.site
    fg = FeedGenerator()
    fg.id(channel.home)
    fg.title(channel.title)
    fg.subtitle(channel.description)
    fg.link(href=ctx.self_url(channel, name), rel="self", type=MEDIA_TYPES[name])
    if ctx.hub:
        fg.link(href=ctx.hub, rel="hub")
    fg.link(href=channel.home, rel="alternate", type="text/html")  # last: RSS <link>
    fg.language(site.language)
    fg.generator("publisher", version=__version__, uri=GENERATOR_URI)
    fg.updated(channel.updated)
    fg.lastBuildDate(channel.updated)
    return fg


class _AtomLinks(BaseEntryExtension):
    """Extra Atom entry links written with their attributes.

    feedgen 1.0 writes an entry's links with ``href`` only (its loop variable
    shadows the link data), which would turn an enclosure into a second
    alternate link; this extension writes them whole.
    """

    def __init__(self) -> None:
        self.links: list[dict[str, str]] = []

    def add(self, **attrs: str | None) -> None:
        self.links.append({k: v for k, v in attrs.items() if v})

    def extend_atom(self, entry: Any) -> Any:
        atom_plain_text(entry)
        for attrs in self.links:
            xml_elem("link", entry, **attrs)
        return entry


class _AtomFeedText(BaseExtension):
    """The feed's own title and subtitle marked ``type="text"``, like every entry's."""

    def extend_atom(self, feed: Any) -> Any:
        atom_plain_text(feed)
        return feed


class _RssHub(BaseExtension):
    """``<atom:link rel="hub">`` in an RSS channel (feedgen writes only rel=self there)."""

    hub: str | None = None

    def extend_ns(self) -> dict[str, str]:
        return {"atom": ATOM_NS}

    def extend_rss(self, feed: Any) -> Any:
        if self.hub:
            xml_elem(f"{{{ATOM_NS}}}link", feed[0], href=self.hub, rel="hub")
        return feed


def rss(ctx: Context, channel: Channel) -> bytes:
    fg = _feedgen(ctx, channel, "rss.xml")
    fg.load_extension("dc", atom=False, rss=True)
    fg.load_extension("media", atom=False, rss=True)
    if ctx.hub:
        fg.register_extension("rss_hub", _RssHub, atom=False, rss=True)
        fg.rss_hub.hub = ctx.hub
    if ctx.logo or ctx.icon:
        fg.image(url=ctx.logo or ctx.icon, title=channel.title, link=channel.home)
    for it in channel.items:
        fe = fg.add_entry(order="append")
        fe.guid(it.id, permalink=False)
        fe.title(it.title)
        fe.link(href=it.link)
        fe.pubDate(it.published)
        if it.summary:
            fe.description(html.escape(it.summary, quote=False))  # RSS descriptions are HTML
        if it.content:
            fe.content(it.content, type="html")
        if it.authors:  # one dc:creator naming all: readers show only the last of several
            fe.dc.dc_creator(", ".join(x.name for x in it.authors))
        for term in it.categories:
            fe.category(term=term)
        if it.image:
            media = {"url": it.image.url, "medium": "image"}
            if it.image.type:
                media["type"] = it.image.type
            fe.media.content(media, group=None)
    return rss_plain_text(fg.rss_str(pretty=True))


def atom(ctx: Context, channel: Channel) -> bytes:
    fg = _feedgen(ctx, channel, "atom.xml")
    fg.register_extension("links_ext", _AtomFeedText, _AtomLinks, atom=True, rss=False)
    fg.author({"name": single_line(xml_safe(ctx.config.site.title))})
    if ctx.icon:
        fg.icon(ctx.icon)
    if ctx.logo:
        fg.logo(ctx.logo)
    spelled: set[str] = set()
    for it in channel.items:
        fe = fg.add_entry(order="append")
        fe.id(it.id)
        fe.title(it.title)
        fe.link(href=it.link, rel="alternate", type="text/html")
        if it.image:
            fe.links_ext.add(rel="enclosure", href=it.image.url, type=it.image.type)
        fe.published(it.published)
        fe.updated(_distinct(it.updated, spelled))
        for x in it.authors:
            fe.author({"name": x.name, "email": x.email} if x.email else {"name": x.name})
        for term in it.categories:
            fe.category(term=term, label=term)
        if it.summary or not it.content:
            fe.summary(it.summary or it.title)
        if it.content:
            fe.content(it.content, type="html")
    return fg.atom_str(pretty=True)


def _offsets() -> Iterator[timezone]:
    yield UTC
    for minutes in range(60, 24 * 60, 60):  # whole hours east and west, then quarter hours
        yield from (timezone(timedelta(minutes=minutes)), timezone(timedelta(minutes=-minutes)))
    for minutes in range(15, 24 * 60, 15):
        if minutes % 60:
            yield from (timezone(timedelta(minutes=minutes)), timezone(timedelta(minutes=-minutes)))


def _distinct(when: datetime, spelled: set[str]) -> datetime:
    """``when`` as the first spelling (the site's offset, else another) not yet used."""
    candidates = chain([when], (when.astimezone(tz) for tz in _offsets()))
    for candidate in candidates:
        text = candidate.isoformat()
        if text not in spelled:
            spelled.add(text)
            return candidate
    return when


def json_feed(ctx: Context, channel: Channel) -> bytes:
    """JSON Feed 1.1 (https://jsonfeed.org/version/1.1)."""
    feed: dict[str, object] = {
        "version": JSON_FEED_VERSION,
        "title": channel.title,
        "home_page_url": channel.home,
        "feed_url": ctx.self_url(channel, "feed.json"),
        "description": channel.description,
        "language": ctx.config.site.language,
        "authors": [{"name": single_line(xml_safe(ctx.config.site.title))}],
    }
    if ctx.logo or ctx.icon:
        feed["icon"] = ctx.logo or ctx.icon
    if ctx.icon:
        feed["favicon"] = ctx.icon
    if ctx.hub:
        feed["hubs"] = [{"type": "WebSub", "url": ctx.hub}]
    items = []
    for it in channel.items:
        entry: dict[str, object] = {
            "id": it.id,
            "url": it.link,
            "title": it.title,
            "content_html": it.content,
            "summary": it.summary,
            "date_published": it.published.isoformat(),
            "date_modified": it.updated.isoformat(),
        }
        if it.image:
            entry["image"] = it.image.url
        if it.authors:
            entry["authors"] = [{"name": x.name} for x in it.authors]
        if it.categories:
            entry["tags"] = list(it.categories)
        items.append(entry)
    feed["items"] = items
    return (json.dumps(feed, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


WRITERS: dict[str, Callable[[Context, Channel], bytes]] = {
    "rss.xml": rss,
    "atom.xml": atom,
    "feed.json": json_feed,
}


def channels(config: Config, articles: Sequence[StoredArticle]) -> list[Channel]:
    """The site's channel and one per category, each with its newest ``[feeds] items``."""
    links = Links(config.site.base_url)
    tz, limit = config.tz, config.feeds.items
    cache: dict[str, Item] = {}

    def items(chosen: Sequence[StoredArticle]) -> tuple[Item, ...]:
        out = []
        for stored in chosen[:limit]:
            it = cache.get(stored.id)
            if it is None:
                it = cache[stored.id] = item(stored, links, tz)
            out.append(it)
        return tuple(out)

    title = single_line(xml_safe(config.site.title))
    description = single_line(xml_safe(config.site.description)) or title
    result = [Channel(title, description, links.base, None, items(articles))]
    for cat in group(articles):
        result.append(
            Channel(
                f"{cat.name} — {title}",
                f"{title}: the latest in {cat.name}",
                links.category(cat.slug),
                cat.slug,
                items(cat.articles),
            )
        )
    return result


def build(config: Config, articles: Sequence[StoredArticle]) -> dict[str, bytes]:
    """Every feed file: {relative path: bytes}. ``articles``: all published, newest first."""
    ctx = Context(config, Links(config.site.base_url))
    out: dict[str, bytes] = {}
    for channel in channels(config, articles):
        for feed in FORMATS:
            out[Links.feed_path(feed.name, channel.category)] = WRITERS[feed.name](ctx, channel)
    return out
