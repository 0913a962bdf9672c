"""The interface language: complete catalogs, Babel dates and plurals, a site's own
catalog, and links that work wherever the web edition is opened."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote
from zoneinfo import ZoneInfo

import pytest
from babel.messages.pofile import read_po
from lxml import html as lxml_html

from publisher import config as configuration
from publisher import i18n
from publisher.i18n import PACKAGE_LOCALE, Language, extract
from publisher.render import default_templates
from tests.sites import ROOT, edit_config

SEOUL = ZoneInfo("Asia/Seoul")
WHEN = datetime(2025, 5, 26, 5, 50, tzinfo=UTC)  # 14:50 in Seoul, a Monday


def catalog(tag: str):
    with (PACKAGE_LOCALE / tag / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        return read_po(fh, locale=tag)


def extracted() -> dict[str, object]:
    return {
        m.id if isinstance(m.id, str) else m.id[0]: m
        for m in extract(default_templates(), ROOT / "publisher")
        if m.id
    }


def test_every_interface_string_has_a_korean_translation():
    """Templates and the code's reader-visible strings (marked N_/gettext): every one
    is in the Korean catalog, translated (every plural form), keeping its placeholders."""
    ko = {m.id if isinstance(m.id, str) else m.id[0]: m for m in catalog("ko") if m.id}
    wanted = extracted()
    missing = sorted(set(wanted) - set(ko))
    assert not missing, f"not in the Korean catalog (run python -m publisher.i18n, then translate): {missing}"
    for key in wanted:
        message = ko[key]
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(strings), f"no Korean translation for {key!r}"
        for s in strings:
            assert set(re.findall(r"%\(\w+\)s", s)) <= set(re.findall(r"%\(\w+\)s", key + str(message.id))), (
                key
            )
        assert not message.fuzzy, f"fuzzy Korean translation for {key!r}"


def test_the_catalogs_hold_no_string_the_templates_dropped():
    for tag in ("en", "ko"):
        stale = sorted(
            {m.id if isinstance(m.id, str) else m.id[0] for m in catalog(tag) if m.id} - set(extracted())
        )
        assert not stale, (
            f"{tag}: strings no template or code uses any more (run python -m publisher.i18n): {stale}"
        )


def test_dates_times_and_numbers_follow_the_language():
    ko, en = Language.of("ko", SEOUL), Language.of("en", SEOUL)
    assert ko.datetime(WHEN) == "2025년 5월 26일 (월) 오후 2:50"
    assert en.datetime(WHEN) == "26 May 2025, 14:50"
    assert ko.date(WHEN) == "2025년 5월 26일 (월)" and en.date(WHEN) == "26 May 2025"
    assert en.number(12345) == "12,345" and ko.number(12345) == "12,345"
    assert Language.of("de", SEOUL).datetime(WHEN) == "26 Mai 2025, 14:50"  # no catalog: Babel's names


def test_plurals_in_both_languages():
    en, ko = Language.of("en", SEOUL), Language.of("ko", SEOUL)
    one, many = (
        "The latest %(shown)s of %(num)s article in %(section)s.",
        "The latest %(shown)s of %(num)s articles in %(section)s.",
    )
    assert en.ngettext(one, many, 1, shown=1, section="Politics") == "The latest 1 of 1 article in Politics."
    assert en.ngettext(one, many, 2, shown=2, section="Politics") == "The latest 2 of 2 articles in Politics."
    assert ko.ngettext(one, many, 1, shown=1, section="정치") == "정치 기사 1건 가운데 최신 1건입니다."
    assert (
        ko.ngettext(one, many, 1200, shown=50, section="정치") == "정치 기사 1,200건 가운데 최신 50건입니다."
    )
    assert i18n.count(1, "%(num)s article", "%(num)s articles") == "1 article"
    assert i18n.count(0, "%(num)s article", "%(num)s articles") == "0 articles"


def test_the_cli_counts_one_article(site, run_publish):
    for path in sorted((site / "seeds").iterdir())[1:]:
        path.unlink()
    run_publish(site, "subscribers", "add", "reader@example.com")
    out = run_publish(site, "now").stdout
    assert re.search(r"^digest of \S+: 1 article$", out, re.M), out
    assert "source seeds: 1 article seen" in run_publish(site, "status").stdout


def site_catalog(site: Path, language: str, header: str, messages: str) -> None:
    """A site's own catalog: SITE/locale/LANGUAGE/LC_MESSAGES/messages.po."""
    folder = site / "locale" / language / "LC_MESSAGES"
    folder.mkdir(parents=True)
    (folder / "messages.po").write_text(
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n' + header + "\n" + messages,
        encoding="utf-8",
    )


def test_a_site_overrides_a_message_and_adds_a_language(site, run_publish):
    site_catalog(site, "ko", "", 'msgid "Latest news"\nmsgstr "오늘의 기사"\n')
    edit_config(site, 'language = "en"', 'language = "ko"')
    run_publish(site, "now", "--no-email")
    index = (site / "public" / "index.html").read_text(encoding="utf-8")
    assert "<h1>오늘의 기사</h1>" in index  # the site's own word
    assert "본문 바로가기" in index  # the packaged catalog for the rest
    site_catalog(
        site,
        "fr",
        '"Plural-Forms: nplurals=2; plural=(n > 1);\\n"\n',
        'msgid "Latest news"\nmsgstr "Dernières nouvelles"\n\nmsgid "d MMMM y, HH:mm"\nmsgstr "d MMMM y \'à\' HH:mm"\n',
    )
    edit_config(site, 'language = "ko"', 'language = "fr"')
    run_publish(site, "now", "--no-email")
    index = (site / "public" / "index.html").read_text(encoding="utf-8")
    assert "<h1>Dernières nouvelles</h1>" in index and "mai 2025 à " in index
    assert "Skip to content" in index  # not in the site's catalog: English


def test_an_unknown_language_is_a_config_error(site, run_publish):
    edit_config(site, 'language = "en"', 'language = "xx-nope"')
    result = run_publish(site, "now", check=False)
    assert result.returncode == 2 and "site.language" in result.stderr and "Traceback" not in result.stderr


def test_the_web_edition_links_relatively_and_feeds_stay_absolute(site, run_publish):
    run_publish(site, "now", "--no-email")
    public = site / "public"
    base = configuration.load(site / "config.toml").site.base_url
    pages = [
        p for p in public.rglob("*.html") if not p.relative_to(public).as_posix().startswith("digests/2")
    ]
    assert len(pages) > 10
    for page in pages:
        doc = lxml_html.fromstring(page.read_bytes())
        path = page.relative_to(public).as_posix()
        for el in doc.xpath("//a[@href] | //link[@href] | //form[@action]"):
            href = el.get("href") or el.get("action")
            if el.tag == "link" and el.get("rel") in ("canonical", "alternate"):
                assert href.startswith(base), (path, href)
            elif href.startswith("#"):
                continue
            elif not href.startswith("http"):
                target = (page.parent / unquote(href.split("#")[0])).resolve()
                if el.tag != "form":
                    assert target.is_file(), (path, href)  # works opened as a file
            else:
                assert not href.startswith(base), (path, href)  # another site's URL only
    feed = (public / "rss.xml").read_text(encoding="utf-8")
    assert f"<link>{base}" in feed


@pytest.mark.parametrize("tag", ["en", "ko"])
def test_both_catalogs_ship_in_the_package(tag):
    assert (PACKAGE_LOCALE / tag / "LC_MESSAGES" / "messages.po").is_file()
    assert Language.of(tag, SEOUL).catalog is not None
