"""The web edition: index, one page per article, category pages, the digest archive.

Pages come from the theme's templates; links come from ``publisher.links`` so the
URLs in feeds and emails land here. Every page advertises its feeds (RSS, Atom and
JSON Feed) for autodiscovery; pages need no JavaScript.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from publisher import mail
from publisher.categories import Category, group
from publisher.config import Config
from publisher.links import Links, category_slug
from publisher.models import StoredArticle
from publisher.store.ledger import DigestRecord

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


def page_context(config: Config, links: Links, categories: Sequence[Category] = ()) -> dict[str, Any]:
    """What every page template (base.html) needs; the web server's pages use it too."""
    return {
        "site": config.site,
        "tz": config.tz,
        "links": links,
        "url": links.article,
        "image": links.image,
        "category_url": lambda name: links.category(category_slug(name)),
        "categories": [(c.name, links.category(c.slug)) for c in categories],
        "site_feeds": feed_links(links, config.site.title),
    }


def build(
    config: Config, articles: Sequence[StoredArticle], digests: Sequence[DigestRecord]
) -> dict[str, str]:
    """Every page of the web edition: {relative path: HTML}. ``articles`` newest first."""
    from publisher.render import environment

    links = Links(config.site.base_url)
    env = environment(config.templates_dir)
    categories = group(articles)
    common = page_context(config, links, categories)
    site_feeds = common["site_feeds"]
    pages: dict[str, str] = {
        "index.html": env.get_template("index.html").render(
            articles=articles[:LISTED], feeds=site_feeds, canonical=links.base, **common
        )
    }
    article_page = env.get_template("article.html")
    for a in articles:
        if links.own_url(a) is None:
            path = links.article_path(a)
            pages[path] = article_page.render(
                article=a, feeds=site_feeds, canonical=links.url(path), **common
            )
    category_page = env.get_template("category.html")
    for c in categories:
        pages[links.category_path(c.slug)] = render_category(category_page, c, links, config, common)
    pages["digests/index.html"] = env.get_template("digests.html").render(
        digests=digests, feeds=site_feeds, canonical=links.url("digests/index.html"), **common
    )
    for d in digests:
        pages[links.digest_path(d.key)] = archived(d.html, links)
    return pages


def render_category(template, category: Category, links: Links, config: Config, common: dict) -> str:  # type: ignore[no-untyped-def]
    own = feed_links(links, f"{category.name} — {config.site.title}", category.slug)
    return template.render(
        category=category,
        articles=category.articles[:LISTED],
        feeds=own + common["site_feeds"],
        category_feeds=own,
        canonical=links.category(category.slug),
        **common,
    )


def archived(html: str, links: Links) -> str:
    """The "view in browser" copy: the digest with its personal fields made generic."""
    return html.replace(mail.UNSUBSCRIBE_URL, links.base).replace(mail.RECIPIENT, "subscribers")
