"""The web edition: index, one page per article, category pages, the article archive
(numbered pages that reach every article), the digest archive.

Pages come from the theme's templates; links come from ``publisher.links`` so the
URLs in feeds and emails land here. Every page advertises its feeds (RSS, Atom and
JSON Feed) for autodiscovery; pages need no JavaScript.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from markupsafe import Markup

from publisher import __version__, mail
from publisher.categories import Category, group
from publisher.config import Config
from publisher.links import FORMATS, Links, category_slug
from publisher.models import DIGEST, DigestRecord, StoredArticle
from publisher.output import Lazy
from publisher.render import site_environment

if TYPE_CHECKING:
    from jinja2 import Environment

PARTS = ("_head.html", "_masthead.html", "_footer.html")  # -> Chrome fields, in order
LISTED = 50  # articles on the index and on each category page
ARCHIVED = 100  # articles on each archive page


@dataclass(frozen=True)
class FeedLink:
    title: str
    type: str
    label: str
    href: str


def feed_links(links: Links, title: str, category: str | None = None) -> list[FeedLink]:
    return [
        FeedLink(f"{title} ({f.label})", f.media_type, f.label, links.feed(f.name, category)) for f in FORMATS
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
    env = site_environment(config)
    categories = group(articles)
    common = _common(config, links, categories)
    site_feeds = common["site_feeds"]

    made: dict[tuple[str, str | None, str], Chrome] = {}

    def chrome(feeds: list[FeedLink], current: str | None = None, root: str = "") -> Chrome:
        """The shared parts, once per set of feeds, current section and depth."""
        key = (feeds[0].href, current, root)
        if key not in made:
            made[key] = _chrome(env, common, feeds, current, root)
        return made[key]

    shared = chrome(site_feeds)
    in_folder = chrome(site_feeds, None, "../")  # articles/, archive/, digests/
    theme = theme_fingerprint(env, config, in_folder)
    archive = Archive(env.get_template("archive.html"), links, common, theme)
    pages: dict[str, str | Lazy] = {
        "site.css": env.get_template("site.css").render(),
        "index.html": env.get_template("index.html").render(
            articles=articles[:LISTED],
            older=archive.newest(len(articles)),
            chrome=shared,
            canonical=links.base,
            root="",
            **common,
        ),
    }
    pages.update(archive.pages(articles, None, lambda root: chrome(site_feeds, None, root)))
    article_page = env.get_template("article.html")
    article_context = {"chrome": in_folder, "root": "../", **common}
    for a in articles:
        if links.own_url(a) is None:
            path = links.article_path(a)
            content = a.content_hash or a.article.content_hash  # the store's copy saves hashing again
            key = hashlib.sha1(
                f"{theme}|{path}|{content}|{a.published.isoformat()}|{a.updated.isoformat()}".encode()
            ).hexdigest()
            pages[path] = Lazy(key, partial(_render, article_page, article_context, a, links.url(path)))
    category_page = env.get_template("category.html")
    for c in categories:
        url = links.category(c.slug)
        own = feed_links(links, f"{c.name} — {config.site.title}", c.slug)
        path = links.category_path(c.slug)
        pages[path] = category_page.render(
            category=c,
            articles=c.articles[:LISTED],
            older=archive.newest(len(c.articles), c.slug),
            category_feeds=own,
            chrome=chrome(own + site_feeds, url, root_of(path)),
            canonical=url,
            root=root_of(path),
            **common,
        )
        pages.update(archive.pages(c.articles, c, partial(chrome, own + site_feeds, url)))
    pages.update(
        issue_archive(config, env, links, digests, common, in_folder, chrome(site_feeds, None, "../../"))
    )
    return pages


@dataclass(frozen=True)
class NewsletterArchive:
    key: str
    title: str
    description: str
    href: str  # its index page
    issues: list[DigestRecord]  # newest first


def issue_archive(
    config: Config,
    env: Environment,
    links: Links,
    digests: Sequence[DigestRecord],
    common: dict[str, Any],
    top: Chrome,
    inner: Chrome,
) -> dict[str, str | Lazy]:
    """Every issue sent (never a held or skipped one) at
    ``digests/<newsletter>/<YYYY-MM-DD>[-N].html``, an index per newsletter, and
    ``digests/index.html`` listing them all. The single digest's issues are also
    still written where they were before newsletters (``digests/<YYYY-MM-DD>.html``):
    links in mail already sent keep working."""
    sent = [d for d in digests if d.status in ("sending", "done")]
    configured = {n.key: n for n in config.newsletters}
    keys = list(dict.fromkeys([*configured, *(d.newsletter for d in sent)]))
    archives = []
    for key in keys:
        n = configured.get(key)
        archives.append(
            NewsletterArchive(
                key,
                n.title if n is not None else key,
                n.description if n is not None else "",
                links.url(links.issues_path(key)),
                [d for d in sent if d.newsletter == key],
            )
        )
    template = env.get_template("digests.html")
    pages: dict[str, str | Lazy] = {
        "digests/index.html": template.render(
            newsletters=archives,
            current=None,
            chrome=top,
            canonical=links.url("digests/index.html"),
            root="../",
            **common,
        )
    }
    for archive in archives:
        path = links.issues_path(archive.key)
        pages[path] = template.render(
            newsletters=[archive],
            current=archive,
            chrome=inner,
            canonical=archive.href,
            root="../../",
            **common,
        )
        for d in archive.issues:
            page = archived(d.html, links)
            pages[links.issue_path(d.newsletter, d.key)] = page
            if d.newsletter == DIGEST:
                pages[links.digest_path(d.key)] = page
    return pages


@dataclass(frozen=True)
class ArchivePage:
    """One page of the archive: the ``number``-th block of ``ARCHIVED`` articles
    counted from the oldest, so a new article changes only the newest page."""

    number: int  # no page count: every page would change when a new one starts
    href: str
    prev: str | None  # the older page
    next: str | None  # the newer page


class Archive:
    """Every article of the site (and of each category) on numbered pages, older
    ones first: ``archive/<n>.html`` and ``categories/<slug>/archive/<n>.html``.
    Numbering from the oldest keeps page n the same as articles are added; each
    page is lazy, keyed by what it shows (titles, links, dates), so a run rewrites
    only the newest page and pages whose articles changed."""

    def __init__(self, template: Any, links: Links, common: dict[str, Any], theme: str) -> None:
        self.template, self.links, self.common, self.theme = template, links, common, theme
        self._shown: dict[str, str] = {}  # article id -> what an archive shows of it

    def newest(self, count: int, category: str | None = None) -> str | None:
        """The newest archive page's URL, or None when the first page lists them all."""
        if count <= LISTED:
            return None
        return self.links.url(self.links.archive_path(-(-count // ARCHIVED), category))

    def pages(
        self, articles: Sequence[StoredArticle], category: Category | None, chrome: Callable[[str], Chrome]
    ) -> dict[str, Lazy]:
        """The archive pages of ``articles`` (newest first): {path: Lazy page}."""
        total = len(articles)
        if total <= LISTED:
            return {}
        slug = category.slug if category else None
        last = -(-total // ARCHIVED)
        paths = [self.links.archive_path(n, slug) for n in range(1, last + 1)]
        urls = [self.links.url(p) for p in paths]
        root = root_of(paths[0])
        frame_chrome = chrome(root)
        frame = hashlib.sha1(f"{self.theme}|{frame_chrome!r}".encode()).hexdigest()
        out: dict[str, Lazy] = {}
        for n in range(1, last + 1):
            chosen = articles[max(0, total - n * ARCHIVED) : total - (n - 1) * ARCHIVED]
            page = ArchivePage(n, urls[n - 1], urls[n - 2] if n > 1 else None, urls[n] if n < last else None)
            h = hashlib.sha1(f"{frame}|{page!r}".encode())
            for a in chosen:
                h.update(self._fingerprint(a).encode())
            out[paths[n - 1]] = Lazy(
                h.hexdigest(),
                partial(
                    self.template.render,
                    articles=chosen,
                    page=page,
                    category=category,
                    chrome=frame_chrome,
                    canonical=page.href,
                    root=root,
                    **self.common,
                ),
            )
        return out

    def _fingerprint(self, a: StoredArticle) -> str:
        shown = self._shown.get(a.id)
        if shown is None:
            shown = self._shown[a.id] = (
                f"|{self.links.article(a)}\x1f{a.title}\x1f{a.published.isoformat()}\x1f{a.article.categories!r}"
            )
        return shown


def root_of(path: str) -> str:
    """How a page at ``path`` (relative to output.dir) reaches the site's root folder."""
    return "../" * path.count("/")


def _render(template: Any, context: dict[str, Any], article: StoredArticle, canonical: str) -> str:
    """One article page (a module-level function: a Lazy page holds only its article)."""
    return template.render({**context, "article": article, "canonical": canonical})


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
        # the subscribe form's choices: shown when there are several
        "offered": [n for n in config.newsletters if n.signup],
    }


def _chrome(
    env: Environment,
    common: dict[str, Any],
    feeds: list[FeedLink],
    current: str | None = None,
    root: str = "",
) -> Chrome:
    parts = {"feeds": feeds, "current": current, "root": root, **common}
    return Chrome(
        *(Markup(env.get_template(name).render(parts)) for name in PARTS)  # noqa: S704 - rendered by the theme
    )


def page_context(config: Config, links: Links, env: Environment) -> dict[str, Any]:
    """The context of a page outside the web edition (the web server's pages): the
    same chrome, feeds and links as every other page, linked from the base URL's
    path (``/``), so they work on whatever host and port serve them."""
    common = _common(config, links)
    root = urlsplit(links.base).path or "/"
    return {
        **common,
        "chrome": _chrome(env, common, common["site_feeds"], None, root),
        "canonical": links.base,
        "root": root,
    }


def theme_fingerprint(env: Environment, config: Config, chrome: Chrome) -> str:
    """What every article page depends on besides its article: the templates, the
    site settings, the shared chrome and this code's version."""
    h = hashlib.sha1(f"{__version__}|{config.site!r}|{chrome!r}".encode())
    for name in sorted(env.list_templates()):
        source, _, _ = env.loader.get_source(env, name)  # type: ignore[union-attr]
        h.update(f"|{name}|{source}".encode())
    return h.hexdigest()


def archived(html: str, links: Links) -> str:
    """The "view in browser" copy: the digest without what only a recipient's mail
    holds (between ``<!--mail-only-->`` marks: the personal footer line with its
    unsubscribe link, the link to this very copy). A digest stored before the marks
    loses its footer paragraph holding the placeholders."""
    if _MAIL_ONLY.search(html):
        html = _MAIL_ONLY.sub("", html)
    else:
        html = _PERSONAL_PARAGRAPH.sub("", html)
    for placeholder in (mail.UNSUBSCRIBE_URL, mail.PREFERENCES_URL):
        html = html.replace(placeholder, links.base)
    return html.replace(mail.RECIPIENT, "")


_MAIL_ONLY = re.compile(r"<!--mail-only-->.*?<!--/mail-only-->", re.S)
_PERSONAL_PARAGRAPH = re.compile(r"<p\b[^>]*>(?:(?!</p>).)*@@RECIPIENT@@.*?</p>", re.S)
