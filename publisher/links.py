"""Every public URL and output path, decided in one place.

Feeds, pages and the digest all link through here, so a link in an email always
lands on a file the web edition wrote.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from urllib.parse import urljoin, urlsplit

from publisher.models import StoredArticle
from publisher.text import slugify

SAFE_SCHEMES = ("http", "https")
_PLAIN_PATH = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._/-]*")


def safe_url(url: str | None, base: str | None = None) -> str | None:
    """``url`` made absolute against ``base``, or None unless it is a plain http(s) URL."""
    if not url:
        return None
    url = url.strip()
    if base is not None:
        url = urljoin(base, url)
    parts = urlsplit(url)
    if parts.scheme not in SAFE_SCHEMES or not parts.netloc:
        return None
    if any(c.isspace() or ord(c) < 0x20 or c in "<>\"'`" for c in url):
        return None
    return url


def category_slug(name: str) -> str:
    """The path segment of a category: its slug, or a short hash for non-Latin names."""
    return slugify(name) or "c-" + hashlib.sha1(name.encode("utf-8")).hexdigest()[:10]


class Links:
    def __init__(self, base_url: str) -> None:
        self.base = base_url if base_url.endswith("/") else base_url + "/"

    def url(self, path: str) -> str:
        if _PLAIN_PATH.fullmatch(path):  # the common case, without urljoin's cost
            return self.base + path
        return urljoin(self.base, path)

    @staticmethod
    def article_path(article: StoredArticle) -> str:
        return f"articles/{article.slug}.html"

    @staticmethod
    def own_url(article: StoredArticle) -> str | None:
        """The article's own canonical URL when it has a usable (http/https) one."""
        return safe_url(article.article.url)

    def article(self, article: StoredArticle) -> str:
        """The article's canonical URL: its own, else its page in the web edition."""
        return self.own_url(article) or self.url(self.article_path(article))

    def image(self, article: StoredArticle) -> str | None:
        """The article's image as an absolute http(s) URL (relative ones resolve here)."""
        return safe_url(article.article.image, self.base)

    def guid(self, article: StoredArticle) -> str:
        """A feed id that never changes for this article (not its title or position)."""
        return uuid.uuid5(uuid.NAMESPACE_URL, self.base + "#" + article.id).urn

    @staticmethod
    def feed_path(name: str, category: str | None = None) -> str:
        """``rss.xml`` for the site, ``categories/<slug>/rss.xml`` for a category slug."""
        return f"categories/{category}/{name}" if category else name

    def feed(self, name: str, category: str | None = None) -> str:
        return self.url(self.feed_path(name, category))

    @staticmethod
    def category_path(slug: str) -> str:
        return f"categories/{slug}/index.html"

    def category(self, slug: str) -> str:
        return self.url(self.category_path(slug))

    @staticmethod
    def archive_path(number: int, category: str | None = None) -> str:
        """Page ``number`` (1 = the oldest articles) of the site's or a category's archive."""
        return f"categories/{category}/archive/{number}.html" if category else f"archive/{number}.html"

    @staticmethod
    def digest_path(key: str) -> str:
        return f"digests/{key}.html"

    def digest(self, key: str) -> str:
        return self.url(self.digest_path(key))
