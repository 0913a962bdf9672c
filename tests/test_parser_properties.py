"""Property tests (hypothesis): whatever bytes or text a source holds, the parsers
never raise, titles are one line of plain text, dates are timezone-aware and nothing
unsafe or XML-forbidden reaches a body."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from publisher.errors import ParseError, SourceError
from publisher.models import Article
from publisher.sanitize import clean_html
from publisher.sources import Entry, Skipped
from publisher.sources.dates import parse_date
from publisher.sources.directory import read_article
from publisher.sources.entries import make_entry
from publisher.sources.export import parse_export
from publisher.sources.markdown import _KEYS as markdown_keys
from publisher.sources.markdown import parse_markdown
from publisher.sources.upstream import read_feed

SEOUL = ZoneInfo("Asia/Seoul")
FORBIDDEN_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
LINE_BREAKS = "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
PROPS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

NASTY = st.sampled_from(
    [
        "<script>alert(1)</script>",
        '<img src=x onerror="alert(1)">',
        '<a href="javascript:alert(1)">x</a>',
        '<a href="JaVaScRiPt&#x3a;alert(1)">x</a>',
        "[x](javascript:alert(1))",
        "![x](data:text/html;base64,PHNjcmlwdD4=)",
        "<iframe src=https://evil.example/></iframe>",
        "<svg onload=alert(1)>",
        "<style>body{}</style>",
        "&#0;&#1;&#xFFFF;&#xD800;",
        "\x00\x07\x1b\ufffe\uffff",
        "\r",
        "\r\n",
        "\u2028",
        "Published: ",
        "BY A, B AND C [a@b.co]",
        "+++",
        "\ufeff",
    ]
)
TEXTISH = st.lists(st.one_of(st.text(max_size=40), NASTY), max_size=12).map("".join)


def check_article(article) -> None:
    assert article.title, "a title is required"
    assert article.title == article.title.strip()
    for text in (article.title, article.summary, *[a.name for a in article.authors], *article.categories):
        assert not any(ch in LINE_BREAKS for ch in text), repr(text)
        assert not any(unicodedata.category(ch) == "Cc" for ch in text), repr(text)
        assert not FORBIDDEN_XML.search(text), repr(text)
    for when in (article.published, article.updated):
        assert when is None or when.utcoffset() is not None
    assert not FORBIDDEN_XML.search(article.body)
    tags = re.findall(r"<[a-zA-Z][^>]*>", article.body)
    for tag in tags:
        assert not re.search(r"\son[a-z]+\s*=", tag, re.IGNORECASE), tag
        assert not re.search(r"=\"\s*(javascript|data|vbscript):", tag, re.IGNORECASE), tag
        assert not re.match(r"<(script|style|iframe|svg|object|embed)\b", tag, re.IGNORECASE), tag


@PROPS
@given(data=st.binary(max_size=2000), suffix=st.sampled_from([".txt", ".md"]))
def test_arbitrary_bytes_never_raise(data: bytes, suffix: str) -> None:
    result = read_article(data, suffix=suffix, article_id="s/x", source="s", tz=SEOUL)
    assert (result.article is None) == (result.reason is not None)
    if result.article is not None:
        check_article(result.article)


def parsed_or_why(parse: Callable[..., tuple[Article, list[str]]], text: str) -> Article | None:
    """The article ``parse`` makes of ``text``, checked; None when it refuses, saying why."""
    try:
        article, warnings = parse(text, article_id="s/x", source="s", tz=SEOUL)
    except ParseError as exc:
        assert str(exc)
        return None
    check_article(article)
    assert all(isinstance(w, str) and w for w in warnings)
    return article


@PROPS
@given(text=TEXTISH)
def test_export_text_parses_or_says_why(text: str) -> None:
    parsed_or_why(parse_export, text)


@PROPS
@given(title=TEXTISH, date=st.text(max_size=30), body=st.lists(TEXTISH, max_size=6))
def test_export_shaped_text(title: str, date: str, body: list[str]) -> None:
    parsed_or_why(parse_export, "\n".join([title, f"Published: {date}", *body]))


TOML_VALUE = st.one_of(
    st.text(max_size=30).map(json.dumps),
    TEXTISH.map(json.dumps),
    st.integers(-(10**12), 10**12).map(str),
    st.booleans().map(lambda b: "true" if b else "false"),
    st.sampled_from(
        [
            "1979-05-27T07:32:00Z",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59-23:59",
            "2025-05-26",
            "07:32:00",
            "2025-05-26T14:50:00",
            '"26 May. 2025, 14:50"',
            '"not a date"',
            "[]",
            "{}",
            '[1, "a", {name = "N", email = "n@x.io"}]',
            '{name = "Kim", email = "bad"}',
            "[[1], [2]]",
        ]
    ),
)
FRONT_KEYS = st.sampled_from([*sorted(markdown_keys), "extra"])  # every key it knows, and one it does not


@PROPS
@given(
    pairs=st.dictionaries(FRONT_KEYS, TOML_VALUE, max_size=8),
    title=st.one_of(st.none(), TEXTISH),
    body=TEXTISH,
)
def test_markdown_front_matter_never_raises(pairs: dict[str, str], title: str | None, body: str) -> None:
    if title is not None:
        pairs["title"] = json.dumps(title)
    front = "\n".join(f"{k} = {v}" for k, v in pairs.items())
    article = parsed_or_why(parse_markdown, f"+++\n{front}\n+++\n{body}")
    if article is None:
        return
    assert article.image is None or article.image.startswith(("http://", "https://"))
    assert article.url is None or article.url.startswith(("http://", "https://"))


@PROPS
@given(
    text=st.one_of(
        st.text(max_size=40),
        st.sampled_from(["2025-05-26T14:50:00+23:59", "0001-01-01", "31 Dec 9999 23:59"]),
    )
)
def test_dates_are_aware_or_none(text: str) -> None:
    when = parse_date(text, SEOUL)
    assert when is None or (when.utcoffset() is not None and 1900 <= when.year <= 9000)


@PROPS
@given(fragment=TEXTISH)
def test_sanitised_html_is_safe_and_xml_clean(fragment: str) -> None:
    html = clean_html(fragment)
    assert not FORBIDDEN_XML.search(html)
    for tag in re.findall(r"<[a-zA-Z][^>]*>", html):
        assert not re.search(r"\son[a-z]+\s*=", tag, re.IGNORECASE), tag
        assert not re.search(r"=\"\s*(javascript|data|vbscript):", tag, re.IGNORECASE), tag
    assert clean_html(html) == html  # idempotent: a stored body passes again unchanged


@settings(PROPS, max_examples=150)
@given(
    title=TEXTISH,
    body=TEXTISH,
    date=st.one_of(st.text(max_size=30), st.sampled_from(["Mon, 26 May 2025 14:50:00 +0900", "2025-05-26"])),
    author=st.text(max_size=30),
    raw=st.booleans(),
)
def test_feed_entries_never_raise(title: str, body: str, date: str, author: str, raw: bool) -> None:
    def x(text: str) -> str:  # what a careless upstream might send, or a careful one
        return text if raw else escape(text)

    document = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title><item>'
        f"<title>{x(title)}</title><description>{x(body)}</description>"
        f"<pubDate>{x(date)}</pubDate><author>{x(author)}</author><category>{x(title)}</category>"
        "</item></channel></rss>"
    )
    try:
        items, _ = read_feed(
            "http://127.0.0.1/feed",
            document.encode("utf-8", "surrogatepass"),
            "application/rss+xml",
            "http://127.0.0.1/feed",
        )
    except SourceError as exc:
        assert str(exc).startswith("http://127.0.0.1/feed: ")
        return
    for i, item in enumerate(items):
        event = make_entry(item, i, source="f", url="http://127.0.0.1/feed", category="", tz=SEOUL)
        assert isinstance(event, Entry | Skipped)
        if isinstance(event, Entry) and event.article is not None:
            check_article(event.article)
