"""The web edition: pages that exist for every link, advertise every feed, carry no
script, and are rewritten only when what they show changed."""

from __future__ import annotations

import json
from pathlib import Path

from lxml import html as lxml_html

from publisher.output import MANIFEST
from tests.sites import ROOT, publish

BASE = "http://127.0.0.1:8000/"


def snapshot(public: Path) -> dict[str, tuple[bytes, int]]:
    """Every file's bytes and mtime; the manifest's mtime is left out: it is the time of
    the last whole build (what /healthz compares), moved by every build."""
    return {
        p.relative_to(public).as_posix(): (p.read_bytes(), 0 if p.name == MANIFEST else p.stat().st_mtime_ns)
        for p in sorted(public.rglob("*"))
        if p.is_file()
    }


def test_a_second_run_leaves_every_file_byte_identical_and_untouched(site: Path) -> None:
    publish(site, "now", "--no-email")
    before = snapshot(site / "public")
    report = json.loads(publish(site, "now", "--no-email", "--json").stdout)
    assert report["files_written"] == []
    assert snapshot(site / "public") == before
    assert not [p for p in (site / "public").rglob("*.tmp")]


def test_one_changed_article_rewrites_only_the_files_that_show_it(site: Path) -> None:
    publish(site, "now", "--no-email")
    seed = site / "seeds" / "003_lantern_festival.md"
    seed.write_text(seed.read_text("utf-8").replace("700 handmade", "800 handmade"), "utf-8")
    report = json.loads(publish(site, "now", "--no-email", "--json").stdout)
    feeds = [p + n for p in ("", "categories/culture/") for n in ("atom.xml", "feed.json", "rss.xml")]
    expected = {
        "articles/lantern-festival-lights-up-cheonggye-stream.html",
        "categories/culture/index.html",
        "index.html",
        *feeds,
    }
    assert set(report["files_written"]) == expected


def test_pages_are_semantic_have_no_script_and_every_link_lands(site: Path) -> None:
    publish(site, "now", "--no-email")
    public = site / "public"
    pages = sorted(public.rglob("*.html"))
    assert {"index.html", "digests/index.html", "categories/business/index.html"} <= {
        p.relative_to(public).as_posix() for p in pages
    }
    for page in pages:
        if page.parent.name == "digests" and page.name != "index.html":
            continue  # the archived digest emails are the digest's own HTML
        doc = lxml_html.fromstring(page.read_bytes())
        where = page.relative_to(public).as_posix()
        assert doc.get("lang") == "en", where
        assert len(doc.findall(".//h1")) == 1, where
        assert doc.find(".//main") is not None and doc.find(".//nav") is not None, where
        assert not doc.findall(".//script"), where
        assert doc.find(".//meta[@name='viewport']") is not None, where
        for img in doc.iter("img"):
            assert img.get("alt") is not None, where
        for a in doc.iter("a"):
            href = a.get("href")
            if href.startswith(BASE):
                target = href[len(BASE) :] or "index.html"
                assert (public / target).is_file(), (where, href)


def test_every_page_advertises_all_three_feed_formats(site: Path) -> None:
    publish(site, "now", "--no-email")
    public = site / "public"
    index = lxml_html.fromstring((public / "index.html").read_bytes())
    found = {(ln.get("type"), ln.get("href")) for ln in index.findall(".//head/link[@rel='alternate']")}
    assert found == {
        ("application/rss+xml", BASE + "rss.xml"),
        ("application/atom+xml", BASE + "atom.xml"),
        ("application/feed+json", BASE + "feed.json"),
    }
    culture = lxml_html.fromstring((public / "categories/culture/index.html").read_bytes())
    hrefs = [ln.get("href") for ln in culture.findall(".//head/link[@rel='alternate']")]
    assert hrefs[:3] == [BASE + "categories/culture/" + n for n in ("rss.xml", "atom.xml", "feed.json")]
    titles = [h.text_content() for h in culture.findall(".//article//h2")]
    assert titles == [
        "Korean drama tops global streaming chart for third week",
        "Lantern festival lights up Cheonggye Stream",
    ]
    article = lxml_html.fromstring((public / "articles/openai-to-open-office-in-seoul.html").read_bytes())
    assert article.find(".//head/link[@rel='canonical']").get("href") == (
        BASE + "articles/openai-to-open-office-in-seoul.html"
    )
    stamp = article.find(".//article//time").get("datetime")
    assert stamp == "2025-05-26T14:50:00+09:00"


def test_an_article_with_its_own_url_links_there_and_gets_no_page(site: Path) -> None:
    seed = site / "seeds" / "004_baseball_opener.md"
    seed.write_text(
        seed.read_text("utf-8").replace("+++\n", '+++\nurl = "https://sports.example/rookie"\n', 1), "utf-8"
    )
    publish(site, "now", "--no-email")
    public = site / "public"
    assert not (public / "articles/rookie-pitcher-strikes-out-ten-in-first-start.html").exists()
    index = lxml_html.fromstring((public / "index.html").read_bytes())
    assert "https://sports.example/rookie" in [a.get("href") for a in index.iter("a")]


def test_a_changed_theme_template_rerenders_every_article_page(site: Path) -> None:
    publish(site, "now", "--no-email")
    theme = site / "templates"
    theme.mkdir()
    text = (ROOT / "templates" / "article.html").read_text("utf-8")
    (theme / "article.html").write_text(
        text.replace('<article class="story">', '<article class="story custom">')
    )
    report = json.loads(publish(site, "now", "--no-email", "--json").stdout)
    pages = sorted((site / "public" / "articles").glob("*.html"))
    assert len(pages) == 9 and all('class="story custom"' in p.read_text("utf-8") for p in pages)
    assert sorted(report["files_written"]) == sorted(p.relative_to(site / "public").as_posix() for p in pages)


def test_a_withdrawn_article_loses_its_page_and_its_place_in_the_feeds(site: Path) -> None:
    publish(site, "now", "--no-email")
    page = site / "public/articles/lantern-festival-lights-up-cheonggye-stream.html"
    assert page.is_file()
    (site / "seeds" / "003_lantern_festival.md").unlink()
    publish(site, "now", "--no-email")
    assert not page.exists()
    index = (site / "public/index.html").read_text("utf-8")
    assert "Lantern festival" not in index
    assert "Lantern festival" not in (site / "public/rss.xml").read_text("utf-8")


def test_article_pages_carry_sharing_metadata(site: Path) -> None:
    publish(site, "now", "--no-email")
    doc = lxml_html.fromstring(
        (site / "public/articles/chipmaker-plans-new-packaging-plant-in-cheonan.html").read_bytes()
    )
    meta = {m.get("property"): m.get("content") for m in doc.findall(".//head/meta[@property]")}
    assert meta["og:title"] == "Chipmaker plans new packaging plant in Cheonan"
    assert meta["og:url"] == BASE + "articles/chipmaker-plans-new-packaging-plant-in-cheonan.html"
    assert meta["article:published_time"] == "2025-05-29T10:15:00+09:00"
    assert meta["article:modified_time"] == "2025-05-29T15:30:00+09:00"
