"""The web edition: index, one page per article, the digest archive.

Pages come from the theme's templates; links come from ``publisher.links`` so the
URLs in feeds and emails land here.
"""

from __future__ import annotations

from collections.abc import Sequence

from publisher import mail
from publisher.config import Config
from publisher.links import Links
from publisher.models import StoredArticle
from publisher.store.ledger import DigestRecord


def build(
    config: Config, articles: Sequence[StoredArticle], digests: Sequence[DigestRecord]
) -> dict[str, str]:
    """Every page of the web edition: {relative path: HTML}."""
    from publisher.render import environment

    links = Links(config.site.base_url)
    env = environment(config.templates_dir)
    common = {"site": config.site, "tz": config.tz, "links": links, "url": links.article}
    pages: dict[str, str] = {
        "index.html": env.get_template("index.html").render(articles=articles[:50], **common)
    }
    article_page = env.get_template("article.html")
    for a in articles:
        if a.article.url is None:
            pages[links.article_path(a)] = article_page.render(article=a, **common)
    pages["digests/index.html"] = env.get_template("digests.html").render(digests=digests, **common)
    for d in digests:
        pages[links.digest_path(d.key)] = archived(d.html, links)
    return pages


def archived(html: str, links: Links) -> str:
    """The "view in browser" copy: the digest with its personal fields made generic."""
    return html.replace(mail.UNSUBSCRIBE_URL, links.base).replace(mail.RECIPIENT, "subscribers")
