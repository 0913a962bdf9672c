"""Categories: one grouping (by slug) for the pages, the feeds and the digest's sections."""

from __future__ import annotations

import mailbox
import re
from datetime import UTC, datetime, timedelta
from email import policy
from email.parser import BytesParser
from pathlib import Path

from publisher import audience, categories, pipeline
from publisher import config as configuration
from publisher.models import Article, Saving, StoredArticle
from publisher.store import Store

NOW = datetime(2026, 1, 10, 7, 0, tzinfo=UTC)


def stored(n: int, *tags: str) -> StoredArticle:
    when = NOW - timedelta(hours=n)
    article = Article(id=f"s:{n}", source="s", title=f"Story {n}", body="<p>x</p>", categories=tags)
    return StoredArticle(article, f"story-{n}", when, when, when)


def test_spellings_that_slugify_alike_are_one_category_named_as_the_newest_spells_it():
    found = categories.group([stored(1, "business"), stored(2, "Business", "Culture"), stored(3, "BUSINESS")])
    assert [(c.slug, c.name, [a.id for a in c.articles]) for c in found] == [
        ("business", "business", ["s:1", "s:2", "s:3"]),
        ("culture", "Culture", ["s:2"]),
    ]


def test_an_article_is_listed_once_per_category_and_blank_names_are_dropped():
    [only] = categories.group([stored(1, "Sports", "sports", " ", "\x00")])
    assert (only.name, len(only.articles)) == ("Sports", 1)


def test_section_names_are_the_newest_articles_spelling_as_the_pages_show_them(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        made = ((3, ("BUSINESS", "경제")), (1, ("business",)), (2, ("Business", "Culture")))
        batch = [
            Saving(
                Article(
                    id=f"s:{n}",
                    source="s",
                    title=f"S{n}",
                    body="x",
                    published=NOW - timedelta(hours=n),
                    categories=tags,
                )
            )
            for n, tags in made
        ]
        store.articles.save_many(batch, NOW)
        names = categories.names(store.articles.category_lists())
    finally:
        store.close()
    assert names == {"business": "business", "culture": "Culture", "경제": "경제"}


def test_digest_sections_follow_each_articles_first_category_by_slug():
    sections = categories.sections(
        [stored(1, "business"), stored(2, "Culture"), stored(3, "Business"), stored(4)]
    )
    assert [(name, [a.id for a in items]) for name, items in sections] == [
        ("business", ["s:1", "s:3"]),
        ("Culture", ["s:2"]),
        (categories.UNCATEGORISED, ["s:4"]),
    ]
    assert categories.sections([stored(1), stored(2)]) == [("", [stored(1), stored(2)])]


def test_business_and_business_make_one_digest_section(site: Path) -> None:
    # Measured before the fix: the pages had one "Business" category, the digest two sections.
    for n, tag in enumerate(["Business", "business"]):
        (site / "seeds" / f"90{n}_case.md").write_text(
            f'+++\ntitle = "Case story {n}"\npublished = 2026-01-0{n + 2}T09:00:00+09:00\n'
            f'tags = ["{tag}"]\n+++\nBody {n}.\n',
            encoding="utf-8",
        )
    config = configuration.load(site / "config.toml")
    store = Store.open(config.store_url)
    try:
        audience.add(store, "reader@example.com")
    finally:
        store.close()
    pipeline.run(config, pipeline.Options())
    box = mailbox.Maildir(site / "outbox", create=False)
    [msg] = [BytesParser(policy=policy.default).parsebytes(box.get_bytes(k)) for k in box.keys()]
    html = msg.get_body(("html",)).get_content()
    text = msg.get_body(("plain",)).get_content()
    headings = [h.casefold() for h in re.findall(r"<h2[^>]*>([^<]+)</h2>", html)]
    assert headings.count("business") == 1, headings
    assert [line.casefold() for line in text.splitlines()].count("== business ==") == 1
    assert (site / "public" / "categories" / "business" / "index.html").is_file()
