"""The demo site's RSS feed and its digest's text part, built on a fixed clock, are
byte for byte the golden files in tests/golden/ (regenerate them with
``python -m tests.golden --update`` when a change is meant, and review the diff)."""

from __future__ import annotations

import pytest

from tests.feedcheck import assert_valid
from tests.golden import GOLDENS, assert_matches_golden, demo_rss


@pytest.mark.parametrize("name", sorted(GOLDENS))
def test_output_matches_its_golden_file(name: str) -> None:
    assert_matches_golden(name, GOLDENS[name]())


def test_the_golden_feed_is_valid() -> None:
    assert_valid({"rss.xml": demo_rss().encode("utf-8")})
