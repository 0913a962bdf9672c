"""The digest (an issue of a newsletter): which articles go out, and the message its
subscribers share.

Selection: published articles of the newsletter's sections (``carries``) that no
earlier issue of that newsletter carried, newest first; the newest
``max_articles`` are shown, in sections by category (``categories.sections``), the rest are counted ("N more on
the site") so they do not spill into tomorrow's digest. Articles an earlier digest
showed and that were corrected since are never sent again as new: they fill the
remaining room in an "Updated" section (they never make a digest on their own).

A digest whose HTML part would pass Gmail's 102 KB clip (counted on the bytes as
sent, after the transfer encoding) shows fewer articles instead (``compose``): the
overflow joins "N more on the site", so the footer with its unsubscribe link is
never clipped off.

Rendering happens once per issue and once per distinct choice of sections among its
readers (``narrow``: the issue's articles of those sections), never per reader:
Jinja2 renders the newsletter's HTML and text templates with placeholders for the
personal fields, premailer inlines the stylesheet once (network access off: no
article can make the publisher fetch a URL), and ``publisher.mail`` fills in each
recipient. ``held_copy`` marks an editor's copy of an issue held for approval.
"""

from __future__ import annotations

import importlib
import logging
import re
import sys
import types
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache

import jinja2

from publisher import categories, mail, plaintext
from publisher.config import Config, Newsletter
from publisher.errors import ConfigError
from publisher.i18n import N_, Language, for_config
from publisher.links import Links, category_slug
from publisher.models import DIGEST, StoredArticle
from publisher.render import site_environment
from publisher.text import single_line

log = logging.getLogger(__name__)
N_("More news")  # the heading of categories.UNCATEGORISED: in the catalogs, translated when rendered


@dataclass(frozen=True)
class Selection:
    shown: list[StoredArticle]
    hidden: list[StoredArticle]
    updated: list[StoredArticle] = field(default_factory=list)  # corrections of sent articles

    @property
    def empty(self) -> bool:
        return not self.shown


@dataclass(frozen=True)
class RenderedDigest:
    subject: str
    html: str  # inlined, with mail.PLACEHOLDERS
    text: str


def select(
    candidates: Sequence[StoredArticle], max_articles: int, corrected: Sequence[StoredArticle] = ()
) -> Selection:
    shown = list(candidates[:max_articles])
    room = max_articles - len(shown) if shown else 0
    return Selection(shown, list(candidates[max_articles:]), list(corrected[:room]))


def slugs(names: Sequence[str]) -> frozenset[str]:
    """Sections as configured or chosen (names or slugs) -> the category slugs they mean."""
    return frozenset(category_slug(single_line(n)) for n in names if single_line(n))


def carries(article: StoredArticle, sections: frozenset[str]) -> bool:
    """Whether an article belongs to ``sections`` (category slugs; empty: every article)."""
    return not sections or not sections.isdisjoint(slugs(article.categories))


def narrow(issue: Selection, sections: frozenset[str], max_articles: int) -> Selection:
    """The issue as a reader who chose ``sections`` gets it: its articles of those
    sections (shown and counted ones alike, up to ``max_articles`` shown) and its
    corrections of those; empty when none of its new articles is theirs."""
    pool = [a for a in issue.shown + issue.hidden if carries(a, sections)]
    return select(pool, max_articles, [a for a in issue.updated if carries(a, sections)])


def the_newsletter(config: Config) -> Newsletter:
    """The site's first newsletter (a site without ``[[newsletters]]`` has one, ``digest``)."""
    return config.newsletters[0]


def render(
    config: Config,
    selection: Selection,
    key: str,
    now: datetime,
    *,
    newsletter: Newsletter | None = None,
    unsubscribe_url: str = mail.UNSUBSCRIBE_URL,
    recipient: str = mail.RECIPIENT,
    preferences_url: str = mail.PREFERENCES_URL,
) -> RenderedDigest:
    """Render and inline the issue ``key`` (YYYY-MM-DD[-N]) of ``newsletter`` once,
    with placeholders for the personal fields (or, given them, one recipient's own
    copy: the reference a check compares with)."""
    newsletter = newsletter or the_newsletter(config)
    links = Links(config.site.base_url)
    env = site_environment(config)
    language = for_config(config)
    date = language.date(now)
    context = {
        "site": config.site,
        "newsletter": newsletter,
        "tz": config.tz,
        "date": date,
        "articles": selection.shown,
        "groups": [
            (language.gettext(n) if n == categories.UNCATEGORISED else n, g)
            for n, g in categories.sections(selection.shown)
        ],
        "updated": selection.updated,
        "more": len(selection.hidden),
        "url": links.article,
        "site_url": links.base,
        "browser_url": links.issue(newsletter.key, key),
        "unsubscribe_url": unsubscribe_url,
        "preferences_url": preferences_url,
        "recipient": recipient,
        "postal_address": config.digest.postal_address,
    }
    subject_env = site_environment(config, autoescape=False, sandboxed=True)
    try:
        subject = single_line(subject_env.from_string(newsletter.subject).render(**context))
    except jinja2.TemplateError as exc:  # e.g. an attribute site has not, or one the sandbox refuses
        where = "digest.subject" if newsletter.key == DIGEST else f"newsletters.{newsletter.key}.subject"
        raise ConfigError(config.path, where, f"cannot render the template: {exc}") from None
    html = env.get_template(f"{newsletter.template}.html").render(subject=subject, **context)
    text = env.get_template(f"{newsletter.template}.txt").render(subject=subject, **context)
    text = plaintext.wrap(text, own_line=(unsubscribe_url, recipient, preferences_url))
    return RenderedDigest(subject, inline_css(html), text)


def held_copy(subject: str, html: str, text: str, language: Language) -> tuple[str, str, str]:
    """An editor's copy of an issue held for approval: its subject prefixed and a
    banner on top of both parts, in the site's language."""
    mark = language.gettext("[Held for approval]")
    banner = language.gettext(
        "This issue is held for approval: readers get it once an editor approves it (publish issues approve)."
    )
    box = (
        '<p style="margin:0;padding:12px 16px;background:#fff3cd;color:#4d3800;font-weight:bold;'
        f'text-align:center;font-family:Arial,sans-serif">{_escape(banner)}</p>'
    )
    start = _BODY.search(html)
    at = start.end() if start else 0
    return f"{mark} {subject}", html[:at] + box + html[at:], f"{mark} {banner}\n\n{text}"


_BODY = re.compile(r"<body\b[^>]*>", re.I)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# Room kept below the clip for what a recipient's copy adds (their address and
# unsubscribe link are measured at generous stand-in lengths too).
CLIP_BUDGET = mail.GMAIL_CLIP_BYTES - 1024
_STAND_INS = {
    mail.UNSUBSCRIBE_URL: "https://" + "u" * 200,
    mail.RECIPIENT: "r" * 64 + "@" + "d" * 100,
    mail.PREFERENCES_URL: "https://" + "p" * 200,
}


def sent_html_size(html: str) -> int:
    """Bytes the HTML part takes as sent to one recipient (stand-ins for the personal fields)."""
    encoding = mail.transfer_encoding(html)
    for placeholder, value in _STAND_INS.items():
        html = html.replace(placeholder, value)
    return mail.sent_size(html, encoding)


def shrink(selection: Selection, count: int) -> Selection:
    """The selection showing only its first ``count`` articles (corrections go first):
    the new articles left out join the hidden ones ("N more on the site")."""
    shown = selection.shown[:count]
    updated = selection.updated[: max(0, count - len(selection.shown))]
    return Selection(shown, selection.shown[count:] + selection.hidden, updated)


def compose(
    config: Config,
    selection: Selection,
    key: str,
    now: datetime,
    budget: int = CLIP_BUDGET,
    *,
    newsletter: Newsletter | None = None,
) -> tuple[Selection, RenderedDigest]:
    """Render the digest with as many of the selected articles as fit under Gmail's
    clip as sent; returns the selection actually shown and its rendering.

    The size grows about linearly with the articles shown, so an interpolation
    search finds the largest count that fits in a few renders."""
    rendered = render(config, selection, key, now, newsletter=newsletter)
    size = sent_html_size(rendered.html)
    total = len(selection.shown) + len(selection.updated)
    if size <= budget or total <= 1:
        return selection, rendered
    full = size
    lo, lo_size, best = 0, 0, None
    hi, hi_size, smallest = total, size, (selection, rendered)
    guess = max(1, total * budget // size)  # proportional: fits, as the fixed part is counted in
    while hi - lo > 1:
        n = min(max(guess, lo + 1), hi - 1)
        trial = shrink(selection, n)
        attempt = render(config, trial, key, now, newsletter=newsletter)
        size = sent_html_size(attempt.html)
        if size <= budget:
            lo, lo_size, best = n, size, (trial, attempt)
        else:
            hi, hi_size, smallest = n, size, (trial, attempt)
        per_article = (hi_size - lo_size) / (hi - lo) if best is not None else hi_size / hi
        guess = lo + int((budget - lo_size) / per_article) if best is not None else n // 2
    chosen = best or smallest  # not even one article fits: send one (the checks say so)
    log.warning(
        "digest %s: %d of %d articles fit under Gmail's %d KB clip (the HTML part would be %.1f KB as"
        " sent); the other %d are left out (new ones counted in 'more on the site')",
        key,
        len(chosen[0].shown) + len(chosen[0].updated),
        total,
        mail.GMAIL_CLIP_BYTES // 1024,
        full / 1024,
        total - len(chosen[0].shown) - len(chosen[0].updated),
    )
    return chosen


@cache
def _offline_premailer() -> type:
    """premailer whose CSS parser fetches nothing: ``allow_network=False`` covers
    ``<link>`` but not ``@import``, which cssutils would otherwise fetch itself. Imported
    on the first digest rendered: importing premailer takes a while, and most ``publish``
    commands render none. premailer imports requests (urllib3, certifi, charset_normalizer:
    ~45 ms) to fetch external stylesheets, which this one never does: requests is
    loaded only if something uses it."""
    import cssutils

    with _on_first_use("requests"):
        from premailer import Premailer

    class OfflinePremailer(Premailer):  # type: ignore[misc]
        def _parse_css_string(self, css_body: str, validate: bool = True) -> object:
            return cssutils.CSSParser(fetcher=_fetch_nothing, validate=validate).parseString(css_body)

    return OfflinePremailer


@contextmanager
def _on_first_use(name: str) -> Iterator[None]:
    """While the block imports, ``import name`` gives a stand-in that imports the real
    module on the first use of one of its attributes (then forwards to it); after it,
    ``import name`` imports the real one. Nothing when it is already imported."""
    if name in sys.modules:
        yield
        return
    stand_in = sys.modules[name] = _Deferred(name)
    try:
        yield
    finally:
        if sys.modules.get(name) is stand_in:
            del sys.modules[name]


class _Deferred(types.ModuleType):
    def __getattr__(self, attr: str) -> object:
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), attr)


def _fetch_nothing(url: str) -> tuple[None, str]:
    log.warning("digest: not fetching %s (the digest's CSS may not load anything)", url)
    return None, ""


def inline_css(html: str) -> str:
    """Inline the stylesheet into style attributes; media queries stay in a style block."""
    return _offline_premailer()(
        html,
        allow_network=False,
        keep_style_tags=False,
        remove_classes=False,
        strip_important=False,
        disable_validation=True,
        cssutils_logging_level=logging.CRITICAL,
    ).transform()
