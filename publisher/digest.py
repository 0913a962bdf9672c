"""The digest: which articles go out, and the message every subscriber shares.

Selection: published articles no earlier digest carried, newest first; the newest
``max_articles`` are shown, grouped by category, the rest are counted ("N more on
the site") so they do not spill into tomorrow's digest. Rendering happens once per
digest: Jinja2 renders the HTML and text templates with placeholders for the
personal fields, premailer inlines the stylesheet once (network access off: no
article can make the publisher fetch a URL), and ``publisher.mail`` fills in each
recipient.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from premailer import Premailer

from publisher import mail
from publisher.config import Config
from publisher.links import Links
from publisher.models import StoredArticle
from publisher.render import environment
from publisher.text import single_line

UNCATEGORISED = "More news"


@dataclass(frozen=True)
class Selection:
    shown: list[StoredArticle]
    hidden: list[StoredArticle]

    @property
    def empty(self) -> bool:
        return not self.shown


@dataclass(frozen=True)
class RenderedDigest:
    subject: str
    html: str  # inlined, with mail.PLACEHOLDERS
    text: str


def select(candidates: Sequence[StoredArticle], max_articles: int) -> Selection:
    return Selection(list(candidates[:max_articles]), list(candidates[max_articles:]))


def group(articles: Sequence[StoredArticle]) -> list[tuple[str, list[StoredArticle]]]:
    """Articles by their first category, groups ordered by their newest article."""
    groups: dict[str, list[StoredArticle]] = {}
    for a in articles:
        groups.setdefault(a.article.categories[0] if a.article.categories else UNCATEGORISED, []).append(a)
    if list(groups) == [UNCATEGORISED]:
        return [("", groups[UNCATEGORISED])]
    named = [(k, v) for k, v in groups.items() if k != UNCATEGORISED]
    if UNCATEGORISED in groups:
        named.append((UNCATEGORISED, groups[UNCATEGORISED]))
    return named


def render(config: Config, selection: Selection, key: str, now: datetime) -> RenderedDigest:
    links = Links(config.site.base_url)
    env = environment(config.templates_dir)
    local = now.astimezone(config.tz)
    date = f"{local.day} {local:%B %Y}"
    context = {
        "site": config.site,
        "tz": config.tz,
        "date": date,
        "articles": selection.shown,
        "groups": group(selection.shown),
        "more": len(selection.hidden),
        "url": links.article,
        "site_url": links.base,
        "browser_url": links.digest(key),
        "unsubscribe_url": mail.UNSUBSCRIBE_URL,
        "recipient": mail.RECIPIENT,
        "postal_address": config.digest.postal_address,
    }
    subject_env = environment(config.templates_dir, autoescape=False)
    subject = single_line(subject_env.from_string(config.digest.subject).render(**context))
    html = env.get_template("digest.html").render(subject=subject, **context)
    text = env.get_template("digest.txt").render(subject=subject, **context)
    return RenderedDigest(subject, inline_css(html), text)


def inline_css(html: str) -> str:
    """Inline the stylesheet into style attributes; media queries stay in a style block."""
    return Premailer(
        html,
        allow_network=False,
        keep_style_tags=False,
        remove_classes=False,
        strip_important=False,
        disable_validation=True,
        cssutils_logging_level=logging.CRITICAL,
    ).transform()
