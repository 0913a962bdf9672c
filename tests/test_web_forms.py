"""The subscribe and preferences forms' fields read against the site's newsletters
(publisher.web.forms): which newsletters and sections a form chose, and what the
preference centre shows."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from publisher.errors import UnknownChoice
from publisher.web.forms import Choice, boxes, choice, section_value, signup_choice


@dataclass(frozen=True)
class N:
    key: str
    title: str = ""
    description: str = ""
    sections: list[str] = field(default_factory=list)
    reader_sections: bool = False
    signup: bool = True


SITE = [
    N("daily", "Daily", sections=["business", "culture", "경제"], reader_sections=True),
    N("weekly", "Weekly", sections=["sports"]),  # sections, but readers may not narrow it
    N("alerts", "Alerts", signup=False),
]


def test_newsletters_in_the_sites_order_with_the_sections_a_reader_narrowed_them_to():
    form = {
        "newsletter": ["", "weekly", "daily", "daily"],
        "section": ["daily:culture", "daily:경제"],
    }
    assert choice(SITE, form) == Choice({"daily": ("culture", "경제"), "weekly": ()})


def test_no_section_or_every_section_is_the_whole_newsletter():
    assert choice(SITE, {"newsletter": ["daily"]}) == Choice({"daily": ()})
    every = [section_value("daily", s) for s in ("business", "culture", "경제")]
    assert choice(SITE, {"newsletter": ["daily"], "section": every}) == Choice({"daily": ()})


def test_sections_of_a_newsletter_not_chosen_are_ignored():
    assert choice(SITE, {"newsletter": ["", "weekly"], "section": ["daily:culture"]}) == Choice(
        {"weekly": ()}
    )


def test_only_empty_newsletter_fields_chose_none_and_no_field_did_not_say():
    assert choice(SITE, {"newsletter": [""]}) == Choice({})
    assert choice(SITE, {"email": ["a@example.com"]}) is None
    assert choice(SITE, {}) is None
    assert signup_choice(SITE) == Choice({"daily": (), "weekly": ()})


@pytest.mark.parametrize(
    "form",
    [
        {"newsletter": ["nightly"]},
        {"newsletter": ["daily"], "section": ["daily:weather"]},
        {"newsletter": ["daily"], "section": ["culture"]},  # no newsletter named
        {"newsletter": ["weekly"], "section": ["weekly:sports"]},  # not reader_sections
        {"newsletter": ["daily"], "section": ["nightly:culture"]},
    ],
)
def test_an_unknown_newsletter_or_section_is_refused_whole(form):
    with pytest.raises(UnknownChoice):
        choice(SITE, form)


def test_the_preference_centre_shows_each_newsletter_with_the_readers_choices():
    shown = boxes(
        SITE, {"daily": ("active", ["culture"]), "weekly": ("pending", []), "alerts": ("unsubscribed", [])}
    )
    assert [(b.key, b.chosen, b.pending) for b in shown] == [
        ("daily", True, False),
        ("weekly", True, True),
        ("alerts", False, False),
    ]
    assert [(s.value, s.chosen) for s in shown[0].sections] == [
        ("daily:business", False),
        ("daily:culture", True),
        ("daily:경제", False),
    ]
    assert shown[1].sections == []  # not for readers to narrow
    whole = boxes(SITE, {"daily": ("active", [])}, {"business": "Business"})[0]
    assert all(s.chosen for s in whole.sections)
    assert [s.name for s in whole.sections] == ["Business", "culture", "경제"]  # as articles spell them
