"""The web edition: index, one page per article, category pages, the digest archive.

Pages come from the theme's templates; links come from ``publisher.links`` so the
URLs in feeds and emails land here. Every page advertises its feeds (RSS, Atom and
JSON Feed) for autodiscovery; pages need no JavaScript.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

from publisher import __version__, mail
from publisher.categories import Category, group
from publisher.config import Config
from publisher.links import Links, category_slug
from publisher.models import StoredArticle
from publisher.output import Lazy
from publisher.render import environment
from publisher.store.ledger import DigestRecord

if TYPE_CHECKING:
    from jinja2 import Environment

PARTS = ("_head.html", "_masthead.html", "_footer.html")  # -> Chrome fields, in order
LISTED = 50  # articles on the index and on each category page
FEED_KINDS = (
    ("rss.xml", "application/rss+xml", "RSS"),
    ("atom.xml", "application/atom+xml", "Atom"),
    ("feed.json", "application/feed+json", "JSON Feed"),
)


@dataclass(frozen=True)
class FeedLink:
    title: str
    type: str
    label: str
    href: str


def feed_links(links: Links, title: str, category: str | None = None) -> list[FeedLink]:
    return [
        FeedLink(f"{title} ({label})", kind, label, links.feed(name, category))
        for name, kind, label in FEED_KINDS
    ]


@dataclass(frozen=True)
class Chrome:
    """The parts every page shares, rendered once per variant rather than per page."""

    head: Markup
    masthead: Markup
    footer: Markup


def build(
    config: Config, articles: Sequence[StoredArticle], digests: Sequence[DigestRecord]
) -> dict[str, str | Lazy]:
    """Every page of the web edition: {relative path: HTML, or a Lazy page}. ``articles`` newest first."""
    links = Links(config.site.base_url)
    env = environment(config.templates_dir)
    categories = group(articles)
    common = _common(config, links, categories)
    site_feeds = common["site_feeds"]
    category_urls = {c.slug: links.category(c.slug) for c in categories}

    def chrome(feeds: list[FeedLink], current: str | None = None) -> Chrome:
        return _chrome(env, common, feeds, current)

    shared = chrome(site_feeds)
    pages: dict[str, str] = {
        "site.css": env.get_template("site.css").render(),
        "index.html": env.get_template("index.html").render(
            articles=articles[:LISTED], chrome=shared, canonical=links.base, **common
        ),
    }
    article_page = env.get_template("article.html")
    theme = theme_fingerprint(env, config, shared)
    for a in articles:
        if links.own_url(a) is None:
            path = links.article_path(a)
            content = a.content_hash or a.article.content_hash  # the store's copy saves hashing again
            key = hashlib.sha1(
                f"{theme}|{path}|{content}|{a.published.isoformat()}|{a.updated.isoformat()}".encode()
            ).hexdigest()
            pages[path] = Lazy(
                key,
                partial(article_page.render, article=a, chrome=shared, canonical=links.base + path, **common),
            )
    category_page = env.get_template("category.html")
    for c in categories:
        own = feed_links(links, f"{c.name} — {config.site.title}", c.slug)
        pages[links.category_path(c.slug)] = category_page.render(
            category=c,
            articles=c.articles[:LISTED],
            category_feeds=own,
            chrome=chrome(own + site_feeds, category_urls[c.slug]),
            canonical=category_urls[c.slug],
            **common,
        )
    pages["digests/index.html"] = env.get_template("digests.html").render(
        digests=digests, chrome=shared, canonical=links.url("digests/index.html"), **common
    )
    for d in digests:
        pages[links.digest_path(d.key)] = archived(d.html, links)
    return pages


def _common(config: Config, links: Links, categories: Sequence[Category] = ()) -> dict[str, Any]:
    """What every page template needs besides its own content."""
    tz = config.tz
    category_urls = {c.slug: links.category(c.slug) for c in categories}
    by_name: dict[str, str] = {}  # a category as articles spell it -> its page, worked out once

    def category_url(name: str) -> str:
        url = by_name.get(name)
        if url is None:
            url = by_name[name] = category_urls.get(category_slug(name)) or links.base
        return url

    return {
        "site": config.site,
        "tz": tz,
        "links": links,
        "url": links.article,
        "image": links.image,
        "local": lambda when: when.astimezone(tz),
        "category_url": category_url,
        "categories": [(c.name, category_urls[c.slug]) for c in categories],
        "site_feeds": feed_links(links, config.site.title),
    }


def _chrome(
    env: Environment, common: dict[str, Any], feeds: list[FeedLink], current: str | None = None
) -> Chrome:
    parts = {"feeds": feeds, "current": current, **common}
    return Chrome(
        *(Markup(env.get_template(name).render(parts)) for name in PARTS)  # noqa: S704 - rendered by the theme
    )


def page_context(config: Config, links: Links, env: Environment) -> dict[str, Any]:
    """The context of a page outside the web edition (the web server's pages): the
    same chrome, feeds and links as every other page."""
    common = _common(config, links)
    return {**common, "chrome": _chrome(env, common, common["site_feeds"]), "canonical": links.base}


def theme_fingerprint(env: Environment, config: Config, chrome: Chrome) -> str:
    """What every article page depends on besides its article: the templates, the
    site settings, the shared chrome and this code's version."""
    h = hashlib.sha1(f"{__version__}|{config.site!r}|{chrome!r}".encode())
    for name in sorted(env.list_templates()):
        source, _, _ = env.loader.get_source(env, name)  # type: ignore[union-attr]
        h.update(f"|{name}|{source}".encode())
    return h.hexdigest()


def archived(html: str, links: Links) -> str:
    """The "view in browser" copy: the digest with its personal fields made generic."""
    return html.replace(mail.UNSUBSCRIBE_URL, links.base).replace(mail.RECIPIENT, "subscribers")
