"""Categories as readers see them: grouped by slug, everywhere.

Two spellings that slugify alike ("Business", "business") are one category, shown
under the first name met (the newest article's spelling). The web edition and the
feeds list an article under each of its categories (``group``); the digest shows it
once, in the section of its first category (``sections``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from publisher.links import category_slug
from publisher.models import StoredArticle
from publisher.text import single_line, xml_safe

UNCATEGORISED = "More news"  # the digest's last section: articles without a category


@dataclass
class Category:
    slug: str
    name: str
    articles: list[StoredArticle] = field(default_factory=list)


class _Names:
    """Raw category names -> (shown name, slug), each worked out once."""

    def __init__(self) -> None:
        self._known: dict[str, tuple[str, str]] = {}

    def of(self, stored: StoredArticle) -> Iterator[tuple[str, str]]:
        """The article's categories as (name, slug), blank ones dropped, each slug once."""
        return self.names(stored.categories)

    def names(self, categories: Sequence[str]) -> Iterator[tuple[str, str]]:
        seen: set[str] = set()
        for raw in categories:
            known = self._known.get(raw)
            if known is None:
                clean = single_line(xml_safe(raw))
                known = self._known[raw] = (clean, category_slug(clean) if clean else "")
            name, slug = known
            if name and slug not in seen:
                seen.add(slug)
                yield name, slug


def names(category_lists: Iterable[Sequence[str]]) -> dict[str, str]:
    """slug -> the name readers see for it, from articles' category lists given newest
    first (the first spelling met, as ``group`` shows it)."""
    found: dict[str, str] = {}
    known = _Names()
    for raw in category_lists:
        for name, slug in known.names(raw):
            found.setdefault(slug, name)
    return found


def _add(found: dict[str, Category], name: str, slug: str, stored: StoredArticle) -> None:
    cat = found.get(slug)
    if cat is None:
        cat = found[slug] = Category(slug, name)
    cat.articles.append(stored)


def group(articles: Sequence[StoredArticle]) -> list[Category]:
    """Every category of ``articles`` (given newest first), sorted by name."""
    found: dict[str, Category] = {}
    names = _Names()
    for stored in articles:
        for name, slug in names.of(stored):
            _add(found, name, slug, stored)
    return sorted(found.values(), key=lambda c: (c.name.casefold(), c.slug))


def sections(articles: Sequence[StoredArticle]) -> list[tuple[str, list[StoredArticle]]]:
    """The digest's sections: each article under its first category, sections in the
    order of their newest article, the uncategorised last as ``UNCATEGORISED`` (or
    one unnamed section when no article has a category)."""
    found: dict[str, Category] = {}
    rest: list[StoredArticle] = []
    names = _Names()
    for stored in articles:
        first = next(names.of(stored), None)
        if first is None:
            rest.append(stored)
        else:
            _add(found, *first, stored)
    if not found:
        return [("", rest)] if rest else []
    named = [(c.name, c.articles) for c in found.values()]
    return named + [(UNCATEGORISED, rest)] if rest else named
