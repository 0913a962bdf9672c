"""Every public URL and output path, decided in one place.

Feeds, pages and the digest all link through here, so a link in an email always
lands on a file the web edition wrote.
"""

from __future__ import annotations

import uuid
from urllib.parse import urljoin

from publisher.models import StoredArticle


class Links:
    def __init__(self, base_url: str) -> None:
        self.base = base_url if base_url.endswith("/") else base_url + "/"

    def url(self, path: str) -> str:
        return urljoin(self.base, path)

    @staticmethod
    def article_path(article: StoredArticle) -> str:
        return f"articles/{article.slug}.html"

    def article(self, article: StoredArticle) -> str:
        """The article's canonical URL: its own, else its page in the web edition."""
        return article.article.url or self.url(self.article_path(article))

    def guid(self, article: StoredArticle) -> str:
        """A feed id that never changes for this article (not its title or position)."""
        return uuid.uuid5(uuid.NAMESPACE_URL, self.base + "#" + article.id).urn

    @staticmethod
    def digest_path(key: str) -> str:
        return f"digests/{key}.html"

    def digest(self, key: str) -> str:
        return self.url(self.digest_path(key))
