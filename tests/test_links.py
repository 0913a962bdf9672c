"""Links: every URL, output path, route and feed format named once, and used by the
feeds, the pages, the mail and the web server alike."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from email.message import EmailMessage

from publisher import links as L
from publisher.links import FORMATS, Links, category_slug, unsubscribe_mailto, unsubscribe_token
from publisher.models import Article, StoredArticle
from publisher.signup import token_in_mail
from publisher.web import DYNAMIC_PATHS, DYNAMIC_PREFIXES
from publisher.web.static import content_type
from publisher.web.views import RedactTokens

WHEN = datetime(2026, 1, 10, tzinfo=UTC)


def stored(**fields: object) -> StoredArticle:
    article = Article(id="s:1", source="s", title="T", body="", **fields)  # type: ignore[arg-type]
    return StoredArticle(article, "t", WHEN, WHEN, WHEN)


def test_urls_sit_below_the_base_with_or_without_its_slash():
    for base in ("https://news.example/edition", "https://news.example/edition/"):
        links = Links(base)
        assert links.url("rss.xml") == "https://news.example/edition/rss.xml"
        assert (
            links.feed("atom.xml", "business") == "https://news.example/edition/categories/business/atom.xml"
        )
        assert links.category("business") == "https://news.example/edition/categories/business/index.html"
        assert links.digest("2026-01-10") == "https://news.example/edition/digests/2026-01-10.html"
        assert links.subscribe() == "https://news.example/edition/subscribe"
        assert links.confirm("tok") == "https://news.example/edition/confirm/tok"
        assert links.unsubscribe("tok") == "https://news.example/edition/unsubscribe/tok"
        assert links.preferences("tok") == "https://news.example/edition/preferences/tok"


def test_an_article_links_to_its_own_url_only_when_it_is_a_plain_http_one():
    links = Links("https://news.example/")
    assert links.article(stored()) == "https://news.example/articles/t.html"
    assert links.article(stored(url="https://paper.example/a")) == "https://paper.example/a"
    assert links.article(stored(url='https://paper.example/"x')) == "https://news.example/articles/t.html"
    assert links.image(stored(image="img/a.jpg")) == "https://news.example/img/a.jpg"
    assert links.image(stored(image="javascript:alert(1)")) is None


def test_a_guid_depends_on_the_site_and_the_id_only():
    a, b = Links("https://news.example/"), Links("https://other.example/")
    assert a.guid(stored()) == a.guid(stored(url="https://paper.example/a"))
    assert a.guid(stored()) != b.guid(stored())


def test_category_paths_are_slugs_or_stable_hashes():
    assert category_slug("Business") == category_slug("business") == "business"
    assert category_slug("경제") == "경제"  # Hangul names keep their letters (percent-encoded in URLs)


def test_the_web_server_answers_exactly_the_routes_links_names():
    assert DYNAMIC_PATHS == ("/" + L.SUBSCRIBE, "/" + L.HEALTH)
    assert DYNAMIC_PREFIXES == ("/" + L.CONFIRM, "/" + L.UNSUBSCRIBE, "/" + L.PREFERENCES, "/" + L.WEBHOOKS)
    redact = RedactTokens()
    for route in L.TOKEN_ROUTES:
        record = logging.LogRecord(
            "uvicorn.access", 20, "", 0, "%s %s %s", ("1.2.3.4", "GET", f"/{route}abc"), None
        )
        redact.filter(record)
        assert record.args == ("1.2.3.4", "GET", f"/{route}[token]")


def test_the_unsubscribe_mailto_subject_is_what_the_mail_pipe_reads():
    link = unsubscribe_mailto("digest@news.example", "tok.en-1_2")
    assert link == "mailto:digest@news.example?subject=unsubscribe%20tok.en-1_2"
    assert unsubscribe_token("Re: Unsubscribe tok.en-1_2") == "tok.en-1_2"
    mail = EmailMessage()
    mail["Subject"] = "unsubscribe tok.en-1_2"
    assert token_in_mail(bytes(mail)) == "tok.en-1_2"
    assert unsubscribe_token("hello") is None


def test_feed_formats_are_one_table_the_server_serves_by():
    assert [f.name for f in FORMATS] == ["rss.xml", "atom.xml", "feed.json"]
    for f in FORMATS:
        assert content_type(f.name) == f.media_type + "; charset=utf-8"


def test_a_mail_links_to_leaving_its_newsletter_and_to_the_preference_centre(tmp_path):
    from publisher import config as configuration
    from publisher.messages import Messages
    from publisher.models import Subscriber
    from publisher.tokens import Signer

    config = configuration.from_dict(
        {"site": {"title": "T", "base_url": "https://news.example/"}}, tmp_path / "config.toml"
    )
    signer = Signer("s" * 32)
    messages = Messages(config, signer)
    sub = Subscriber(1, "pub1", "r@example.com")
    url, mailto = messages.unsubscribe_links(sub, "daily")
    token = url.removeprefix("https://news.example/unsubscribe/")
    assert token != url and mailto == unsubscribe_mailto(messages.sender_addr, token)
    claim, _ = signer.read("unsubscribe", token)
    assert claim is not None and (claim.public_id, claim.newsletter) == ("pub1", "daily")
    preferences = messages.preferences_url(sub)
    assert preferences.startswith("https://news.example/preferences/")
    assert signer.verify("preferences", preferences.rsplit("/", 1)[1]) == ("pub1", "")
