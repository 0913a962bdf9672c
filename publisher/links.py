"""Every public URL, output path and route, decided in one place.

Feeds, pages and the digest all link through here, so a link in an email always
lands on a file the web edition wrote; the web server (``publisher.web``) answers
the routes named here, and the feed formats (file name, media type) are listed
once, in ``FORMATS``.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from urllib.parse import quote, urljoin

from publisher.addresses import http_url
from publisher.models import StoredArticle
from publisher.text import slugify

_URL_SAFE = "/%:@!$&'()*+,;=~?#"  # reserved characters and existing escapes stay as they are
_PLAIN_PATH = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._/-]*")


@dataclass(frozen=True)
class FeedFormat:
    name: str  # the file name, in the site's root and in each category's folder
    media_type: str
    label: str  # what readers are shown ("RSS")


FORMATS = (
    FeedFormat("rss.xml", "application/rss+xml", "RSS"),
    FeedFormat("atom.xml", "application/atom+xml", "Atom"),
    FeedFormat("feed.json", "application/feed+json", "JSON Feed"),
)
MEDIA_TYPES = {f.name: f.media_type for f in FORMATS}

# The web server's routes (paths below the base URL). Confirm, unsubscribe and
# preferences links end in a signed token (``publisher.tokens``); a mail asking to
# unsubscribe carries its token in its subject.
SUBSCRIBE = "subscribe"
HEALTH = "healthz"
CONFIRM = "confirm/"
UNSUBSCRIBE = "unsubscribe/"  # + a token naming the subscriber and the newsletter to leave
PREFERENCES = "preferences/"  # + a token naming the subscriber: the preference centre
TOKEN_ROUTES = (CONFIRM, UNSUBSCRIBE, PREFERENCES)
# ESP webhooks: POST /webhooks/<provider> (publisher.esp.PROVIDERS: ses, postmark, mailgun, sendgrid).
WEBHOOKS = "webhooks/"
_MAILTO_SUBJECT = "unsubscribe%20"  # "unsubscribe <token>", as a mailto: URL writes it
_UNSUBSCRIBE_SUBJECT = re.compile(r"\bunsubscribe\s+([A-Za-z0-9_.\-]+)", re.IGNORECASE)


def unsubscribe_mailto(address: str, token: str) -> str:
    """The List-Unsubscribe mailto: link: a mail to ``address`` whose subject holds the token."""
    return f"mailto:{address}?subject={_MAILTO_SUBJECT}{token}"


def unsubscribe_token(subject: str) -> str | None:
    """The token of an ``unsubscribe_mailto`` mail's subject, or None when it has none."""
    found = _UNSUBSCRIBE_SUBJECT.search(subject)
    return found.group(1) if found else None


def category_slug(name: str) -> str:
    """The path segment of a category: its slug (Hangul kept), or a short hash for a
    name without letters or digits."""
    return slugify(name) or "c-" + hashlib.sha1(name.encode("utf-8")).hexdigest()[:10]


class Links:
    def __init__(self, base_url: str) -> None:
        self.base = base_url if base_url.endswith("/") else base_url + "/"

    def url(self, path: str) -> str:
        """The absolute URL of ``path``; a non-ASCII path (a Hangul slug) is
        percent-encoded as UTF-8, so every URL is a valid URI (and, decoded, an IRI)."""
        if _PLAIN_PATH.fullmatch(path):  # the common case, without urljoin's cost
            return self.base + path
        return urljoin(self.base, quote(path, safe=_URL_SAFE))

    @staticmethod
    def article_path(article: StoredArticle) -> str:
        return f"articles/{article.slug}.html"

    @staticmethod
    def own_url(article: StoredArticle) -> str | None:
        """The article's own canonical URL when it has a usable (http/https) one."""
        return http_url(article.url)

    def article(self, article: StoredArticle) -> str:
        """The article's canonical URL: its own, else its page in the web edition."""
        return self.own_url(article) or self.url(self.article_path(article))

    def image(self, article: StoredArticle) -> str | None:
        """The article's image as an absolute http(s) URL (relative ones resolve here)."""
        return http_url(article.image, self.base)

    def guid(self, article: StoredArticle) -> str:
        """The article's feed id: the one minted when it was first collected (kept when
        base_url changes), else the one that would be minted now."""
        return article.feed_id or self.mint_guid(article.id)

    def mint_guid(self, article_id: str) -> str:
        """A new article's feed id: never its title or position; stored, never recomputed."""
        return uuid.uuid5(uuid.NAMESPACE_URL, self.base + "#" + article_id).urn

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
        """The single digest's archive page before newsletters (still written for ``digest``)."""
        return f"digests/{key}.html"

    @staticmethod
    def issue_path(newsletter: str, key: str) -> str:
        """An issue's archive page ("view in browser"): ``key`` is YYYY-MM-DD[-N]."""
        return f"digests/{newsletter}/{key}.html"

    def issue(self, newsletter: str, key: str) -> str:
        return self.url(self.issue_path(newsletter, key))

    @staticmethod
    def issues_path(newsletter: str) -> str:
        """A newsletter's archive: every issue sent."""
        return f"digests/{newsletter}/index.html"

    def digest(self, key: str) -> str:
        return self.url(self.digest_path(key))

    def webhook(self, provider: str) -> str:
        """Where ``provider`` (ses, postmark, mailgun, sendgrid) posts its events."""
        return self.url(WEBHOOKS + provider)

    def subscribe(self) -> str:
        return self.url(SUBSCRIBE)

    def confirm(self, token: str) -> str:
        return self.url(CONFIRM + token)

    def unsubscribe(self, token: str) -> str:
        """The one-click link of ``token`` (``Signer.sign("unsubscribe", id, newsletter)``)."""
        return self.url(UNSUBSCRIBE + token)

    def preferences(self, token: str) -> str:
        """The preference centre of ``token`` (``Signer.sign("preferences", id)``)."""
        return self.url(PREFERENCES + token)
