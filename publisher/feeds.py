"""Feeds: RSS 2.0 and Atom 1.0 built with feedgen from stored articles.

``FORMATS`` maps an output file name to its builder; adding a format (JSON Feed,
per-category feeds) is adding an entry. feedgen's quirks are handled here only: it
rejects naive datetimes, stamps lastBuildDate with the current time unless told
(we pin it to the newest content change, so an unchanged feed stays byte-identical)
and writes no self link unless given one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from feedgen.feed import FeedGenerator

from publisher.config import Config
from publisher.links import Links
from publisher.models import StoredArticle
from publisher.text import xml_safe

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _generator(config: Config, articles: Sequence[StoredArticle], self_path: str) -> FeedGenerator:
    links = Links(config.site.base_url)
    site = config.site
    fg = FeedGenerator()
    fg.load_extension("dc", atom=False, rss=True)
    fg.id(links.base)
    fg.title(xml_safe(site.title))
    fg.subtitle(xml_safe(site.description or site.title))
    fg.link(href=links.base, rel="alternate")
    fg.link(href=links.url(self_path), rel="self")
    fg.language(site.language)
    fg.generator("publisher", uri="https://pypi.org/project/publisher/")
    newest = max((a.updated for a in articles), default=EPOCH)
    fg.updated(newest)
    fg.lastBuildDate(newest)
    for stored in articles:
        a = stored.article
        fe = fg.add_entry(order="append")
        fe.id(links.guid(stored))
        fe.guid(links.guid(stored), permalink=False)
        fe.title(xml_safe(a.title))
        fe.link(href=links.article(stored), rel="alternate")
        fe.published(stored.published)
        fe.updated(stored.updated)
        for author in a.authors:
            if author.email:
                fe.author({"name": xml_safe(author.name), "email": author.email})
            else:
                fe.author({"name": xml_safe(author.name)})
        if a.authors:
            fe.dc.dc_creator([xml_safe(x.name) for x in a.authors])
        for category in a.categories:
            fe.category({"term": xml_safe(category), "label": xml_safe(category)})
        if a.summary:
            fe.summary(xml_safe(a.summary))
        fe.content(xml_safe(a.body), type="html")
    return fg


def rss(config: Config, articles: Sequence[StoredArticle], path: str) -> bytes:
    return _generator(config, articles, path).rss_str(pretty=True)


def atom(config: Config, articles: Sequence[StoredArticle], path: str) -> bytes:
    return _generator(config, articles, path).atom_str(pretty=True)


FORMATS: dict[str, Callable[[Config, Sequence[StoredArticle], str], bytes]] = {
    "rss.xml": rss,
    "atom.xml": atom,
}


def build(config: Config, articles: Sequence[StoredArticle]) -> dict[str, bytes]:
    """Every feed file of the site: {relative path: bytes}."""
    return {name: make(config, articles, name) for name, make in FORMATS.items()}
