"""Property: any Unicode in every configurable and article text field gives a digest
that builds, whose every raw header line is ASCII, and that parses back (the
standard library's email parser) to the same text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import policy
from email.header import decode_header, make_header
from email.parser import BytesParser
from email.utils import parseaddr, unquote
from html import escape
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import html as lxml_html

from publisher import config as configuration
from publisher import digest as digests
from publisher.messages import Messages
from publisher.models import Article, Author, DigestRecord, StoredArticle, Subscriber
from publisher.text import single_line
from publisher.tokens import Signer

NOW = datetime(2025, 5, 26, 5, 50, tzinfo=UTC)
# Printable text of any script (letters, marks, digits, punctuation, symbols, spaces);
# what sources and config would hold once their own cleaning (control characters) ran.
text = st.text(
    st.characters(codec="utf-8", categories=("L", "M", "N", "P", "S", "Zs")), min_size=1, max_size=30
).filter(lambda s: single_line(s) != "")
plain = text.filter(lambda s: not any(c in s for c in "{}%#"))  # literal text in a subject template


def quoted(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '" <digest@news.example.com>'


def squash(s: str) -> str:
    return " ".join(s.split())


def decoded(value: str) -> str:
    return str(make_header(decode_header(value)))


def display(value: str) -> tuple[str, str]:
    """(display name, address) of a raw address header, RFC 2047-decoded (not through
    parseaddr, which reads a decoded ":" or "," as address syntax)."""
    phrase, _, addr = " ".join(value.split()).rpartition(" <")
    return unquote(decoded(phrase)) if phrase.startswith('"') else decoded(phrase), addr.rstrip(">")


# each article: (title, summary, body, category, author, source)
ARTICLES = st.lists(st.tuples(text, text, text, text, text, text), min_size=1, max_size=3)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(title=text, description=text, sender=text, subject=plain, postal=text, reader=text, articles=ARTICLES)
def test_any_unicode_builds_an_ascii_headed_digest_that_parses_back(
    tmp_path: Path, title, description, sender, subject, postal, reader, articles
):
    config = configuration.from_dict(
        {
            "site": {"title": title, "description": description, "base_url": "https://news.example.com/"},
            "digest": {"from": quoted(sender), "subject": subject + " {{ date }}", "postal_address": postal},
        },
        tmp_path / "config.toml",
    )
    stored = []
    for i, (a_title, summary, body, category, author, source) in enumerate(articles):
        when = NOW - timedelta(hours=i)
        a = Article(
            id=f"{source}:{i}",
            source=source,
            title=a_title,
            body=f"<p>{escape(body)}</p>",
            published=when,
            authors=(Author(author),),
            summary=summary,
            categories=(category,),
        )
        stored.append(StoredArticle(a, f"a-{i}", when, when, when, content_hash=a.content_hash))
    selection = digests.select(stored, 20)
    rendered = digests.render(config, selection, "2025-05-26", NOW)
    record = DigestRecord(1, "2025-05-26", NOW, rendered.subject, "sending", rendered.html, rendered.text)
    raw = Messages(config, Signer("s" * 32)).digest(record)(Subscriber(1, "pub1", "r@example.com", reader))

    head = raw.split(b"\r\n\r\n", 1)[0]
    for line in head.split(b"\r\n"):
        assert line.isascii() and len(line) <= 998, line
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    old = BytesParser(policy=policy.compat32).parsebytes(raw)
    assert str(msg["Subject"]) == rendered.subject
    assert squash(rendered.subject).startswith(squash(subject))
    assert display(old["From"]) == (single_line(parseaddr(quoted(sender))[0]), "digest@news.example.com")
    assert display(old["To"]) == (single_line(reader), "r@example.com")
    list_id = decoded(old["List-Id"])
    assert list_id.endswith(" <digest.news.example.com>")
    assert unquote(list_id.removesuffix(" <digest.news.example.com>")) == single_line(title)
    text_part = squash(msg.get_body(("plain",)).get_content())
    html_doc = lxml_html.fromstring(msg.get_body(("html",)).get_content())
    html_part = squash(html_doc.text_content())
    for a in stored:
        for field in (a.title, a.summary):
            assert squash(field) in text_part, field
            assert squash(field) in html_part, field
    assert squash(single_line(title)) in html_part
