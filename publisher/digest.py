"""The digest: which articles go out, and the message every subscriber shares.

Selection: published articles no earlier digest carried, newest first; the newest
``max_articles`` are shown, in sections by category (``categories.sections``), the rest are counted ("N more on
the site") so they do not spill into tomorrow's digest. Articles an earlier digest
showed and that were corrected since are never sent again as new: they fill the
remaining room in an "Updated" section (they never make a digest on their own).

Rendering happens once per digest: Jinja2 renders the HTML and text templates with placeholders for the
personal fields, premailer inlines the stylesheet once (network access off: no
article can make the publisher fetch a URL), and ``publisher.mail`` fills in each
recipient.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import cssutils
from premailer import Premailer

from publisher import categories, mail
from publisher.config import Config
from publisher.links import Links
from publisher.models import StoredArticle
from publisher.render import environment
from publisher.text import single_line

log = logging.getLogger(__name__)


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


def render(
    config: Config,
    selection: Selection,
    key: str,
    now: datetime,
    *,
    unsubscribe_url: str = mail.UNSUBSCRIBE_URL,
    recipient: str = mail.RECIPIENT,
) -> RenderedDigest:
    """Render and inline the digest once, with placeholders for the personal fields
    (or, given them, one recipient's own copy: the reference a check compares with)."""
    links = Links(config.site.base_url)
    env = environment(config.templates_dir)
    local = now.astimezone(config.tz)
    date = f"{local.day} {local:%B %Y}"
    context = {
        "site": config.site,
        "tz": config.tz,
        "date": date,
        "articles": selection.shown,
        "groups": categories.sections(selection.shown),
        "updated": selection.updated,
        "more": len(selection.hidden),
        "url": links.article,
        "site_url": links.base,
        "browser_url": links.digest(key),
        "unsubscribe_url": unsubscribe_url,
        "recipient": recipient,
        "postal_address": config.digest.postal_address,
    }
    subject_env = environment(config.templates_dir, autoescape=False)
    subject = single_line(subject_env.from_string(config.digest.subject).render(**context))
    html = env.get_template("digest.html").render(subject=subject, **context)
    text = env.get_template("digest.txt").render(subject=subject, **context)
    return RenderedDigest(subject, inline_css(html), text)


class _OfflinePremailer(Premailer):  # type: ignore[misc]
    """premailer whose CSS parser fetches nothing: ``allow_network=False`` covers
    ``<link>`` but not ``@import``, which cssutils would otherwise fetch itself."""

    def _parse_css_string(self, css_body: str, validate: bool = True) -> object:
        return cssutils.CSSParser(fetcher=_fetch_nothing, validate=validate).parseString(css_body)


def _fetch_nothing(url: str) -> tuple[None, str]:
    log.warning("digest: not fetching %s (the digest's CSS may not load anything)", url)
    return None, ""


def inline_css(html: str) -> str:
    """Inline the stylesheet into style attributes; media queries stay in a style block."""
    return _OfflinePremailer(
        html,
        allow_network=False,
        keep_style_tags=False,
        remove_classes=False,
        strip_important=False,
        disable_validation=True,
        cssutils_logging_level=logging.CRITICAL,
    ).transform()
