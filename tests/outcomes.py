"""The exact outcomes expected of the fixture corpora, kept as data beside them:
tests/fixtures/articles-outcomes.toml for tests/fixtures/articles and
tests/fixtures/upstream-outcomes.toml for tests/fixtures/upstream."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import datetime

from tests.sites import FIXTURES


@dataclass(frozen=True)
class Outcome:
    title: str
    published: datetime | None  # None: no usable date, the time first seen stands in
    authors: list[tuple[str, str | None]]  # (name, e-mail or None)
    body: str
    url: str | None = None


def outcomes(corpus: str) -> dict[str, Outcome]:
    """Every article the corpus ``corpus`` ("articles", "upstream") yields, by key."""
    with open(FIXTURES / f"{corpus}-outcomes.toml", "rb") as fh:
        table = tomllib.load(fh)
    return {
        key: Outcome(
            title=fields["title"],
            published=fields.get("published"),
            authors=[(a["name"], a.get("email")) for a in fields["authors"]],
            body=fields["body"],
            url=fields.get("url"),
        )
        for key, fields in table.items()
    }
