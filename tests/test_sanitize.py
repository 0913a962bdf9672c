"""Untrusted HTML in, safe HTML out: what survives sanitising and what never does."""

from __future__ import annotations

import pytest

from publisher.sanitize import clean_html, html_to_text, paragraphs_html


@pytest.mark.parametrize(
    "dirty",
    [
        "<script>alert(1)</script>",
        '<img src="x.jpg" onerror="alert(1)">',
        '<a href="javascript:alert(1)">x</a>',
        '<a href="data:text/html,&lt;script&gt;">x</a>',
        "<style>body{display:none}</style>",
        '<iframe src="https://evil.example/"></iframe>',
        '<form action="https://evil.example/"><input name="q"></form>',
        "<svg><script>alert(1)</script></svg>",
        '<p style="background:url(https://tracker.example/)">x</p>',
    ],
)
def test_nothing_active_survives(dirty):
    clean = clean_html(dirty).lower()
    for needle in (
        "<script",
        "onerror",
        "javascript:",
        "data:",
        "<style",
        "<iframe",
        "<form",
        "<input",
        "style=",
    ):
        assert needle not in clean, (dirty, clean)


def test_news_markup_survives_and_links_get_a_safe_rel():
    clean = clean_html(
        '<h2>Head</h2><p>A <a href="https://example.com/a">link</a>, <em>em</em> and <q>q</q>.</p>'
        '<figure><img src="https://example.com/i.jpg" alt="A"><figcaption>Cap</figcaption></figure>'
    )
    assert '<a href="https://example.com/a" rel="noopener noreferrer">link</a>' in clean
    assert '<img src="https://example.com/i.jpg" alt="A">' in clean
    assert "<h2>Head</h2>" in clean and "<figcaption>Cap</figcaption>" in clean


def test_script_content_is_dropped_but_unknown_tags_keep_their_text():
    assert clean_html("<p>a<script>b</script>c</p>") == "<p>ac</p>"
    assert clean_html("<blink>kept</blink>") == "kept"


def test_characters_xml_forbids_are_removed_even_as_character_references():
    clean = clean_html("<p>a\x00b\x0bc&#1;d\ufffe</p>")
    assert clean == "<p>abcd</p>"
    assert clean_html("\ufeff<p>x</p>") == "<p>x</p>"


def test_plain_paragraphs_are_escaped_and_text_is_read_back():
    assert paragraphs_html(["a < b & c", "second"]) == "<p>a &lt; b &amp; c</p>\n<p>second</p>"
    assert html_to_text("<p>Fish &amp; chips<script>x</script> <b>now</b></p>") == "Fish & chips now"
    # one block ends, the next begins: a space between their texts (summaries, titles)
    assert html_to_text("<p>Photo at dusk</p><p>Second.</p>") == "Photo at dusk Second."
