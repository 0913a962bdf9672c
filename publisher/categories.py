"""Categories as readers see them: grouped by slug, newest article first.

Two spellings that slugify alike ("Business", "business") are one category, shown
under the first name met (the newest article's spelling).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from publisher.links import category_slug
from publisher.models import StoredArticle
from publisher.text import single_line, xml_safe


@dataclass
class Category:
    slug: str
    name: str
    articles: list[StoredArticle] = field(default_factory=list)


def group(articles: Sequence[StoredArticle]) -> list[Category]:
    """The categories of ``articles`` (given newest first), sorted by name."""
    found: dict[str, Category] = {}
    named: dict[str, tuple[str, str]] = {}  # raw -> (name, slug), each worked out once
    for stored in articles:
        seen: set[str] = set()
        for raw in stored.article.categories:
            known = named.get(raw)
            if known is None:
                clean = single_line(xml_safe(raw))
                known = named[raw] = (clean, category_slug(clean) if clean else "")
            name, slug = known
            if not name:
                continue
            if slug in seen:
                continue
            seen.add(slug)
            cat = found.get(slug)
            if cat is None:
                cat = found[slug] = Category(slug, name)
            cat.articles.append(stored)
    return sorted(found.values(), key=lambda c: (c.name.casefold(), c.slug))
