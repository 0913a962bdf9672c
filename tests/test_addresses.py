"""One check for an e-mail address and one for an http URL: every reader of a source,
the configuration, the subscriber list and the feeds agree on what is valid."""

from __future__ import annotations

import json
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from publisher import config
from publisher.addresses import InvalidAddress, email_address, email_or_none, http_url, mailbox_key
from publisher.errors import ConfigError
from publisher.sources.export import parse_export
from publisher.sources.markdown import parse_markdown

SEOUL = ZoneInfo("Asia/Seoul")

BAD_URLS = [
    'https://example.com/a"onmouseover="alert(1)',
    "https://example.com/<script>",
    "https://example.com/a>b",
    "https://example.com/a b",
    "https://example.com/a\tb",
    "https://example.com/`x`",
    "javascript:alert(1)",
    "ftp://example.com/file",
    "https:///no-host",
    "//example.com/no-scheme",
    "http://[unbalanced/",
]


@pytest.mark.parametrize("url", BAD_URLS)
def test_http_url_refuses_what_no_link_may_carry(url):
    assert http_url(url) is None


def test_http_url_keeps_plain_links_and_resolves_relative_ones():
    assert http_url(" https://example.com/a?b=1#c ") == "https://example.com/a?b=1#c"
    assert http_url("img/x.jpg", "https://news.example/") == "https://news.example/img/x.jpg"
    assert http_url("") is None and http_url(None) is None


def _markdown(front: str) -> object:
    text = f'+++\ntitle = "T"\npublished = 2026-01-01T00:00:00Z\n{front}\n+++\nBody.\n'
    article, _ = parse_markdown(text, article_id="a", source="s", tz=SEOUL)
    return article


@pytest.mark.parametrize("url", [u for u in BAD_URLS if "\t" not in u])  # single_line drops a tab
def test_markdown_front_matter_urls_use_the_one_check(url):
    # The Markdown reader had its own pattern, ^https?://\S+$, which let < > " through.
    article = _markdown(f"url = {json.dumps(url)}\nimage = {json.dumps(url)}")
    assert article.url is None and article.image is None


@pytest.mark.parametrize("url", [u for u in BAD_URLS if not u.startswith("//")])
def test_config_urls_use_the_one_check(tmp_path: Path, url):
    path = tmp_path / "config.toml"
    path.write_text(f"[site]\nbase_url = {json.dumps(url)}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="site.base_url.*absolute http"):
        config.load(path)


def test_addresses_are_checked_and_kept_in_ascii():
    assert email_address(" Lee@Bücher.Example ") == "Lee@xn--bcher-kva.example"
    assert mailbox_key("Lee@Bücher.Example") == "lee@xn--bcher-kva.example"
    for bad in [
        "no-at-sign",
        "a@b",
        "a b@example.com",
        "a@exa mple.com",
        "<a@example.com>",
        "용@example.com",
    ]:
        with pytest.raises(InvalidAddress):
            email_address(bad)
        assert email_or_none(bad) is None


def test_a_local_domain_is_only_for_the_config_from_address(tmp_path: Path):
    assert email_address("digest@localhost", local_domain=True) == "digest@localhost"
    with pytest.raises(InvalidAddress):
        email_address("digest@localhost")
    with pytest.raises(InvalidAddress):
        email_address("di gest@localhost", local_domain=True)
    path = tmp_path / "config.toml"
    path.write_text("[digest]\nfrom = 'News <news@example..com>'\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="digest.from"):
        config.load(path)


def test_sources_keep_only_valid_author_addresses():
    article = _markdown(
        'authors = [{ name = "Kim", email = "kim@example.com" }, { name = "Lee", email = "lee@<x>.com" }]'
    )
    assert [(a.name, a.email) for a in article.authors] == [("Kim", "kim@example.com"), ("Lee", None)]
    export = "TITLE\n\nBY KIM MIN-JI [kim@example..com]\n\nBody text.\n"
    article, _ = parse_export(export, article_id="e", source="s", tz=SEOUL)
    assert all(a.email is None for a in article.authors)
