"""The archive: every article reachable from the web edition on numbered pages, oldest
first, linked with rel=prev/next, and a run rewrites only the pages that changed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from lxml import html as lxml_html

from publisher import config as config_mod
from publisher import site
from publisher.models import Article, StoredArticle
from publisher.output import Writer

BASE = "https://news.example.com/"
START = datetime(2024, 1, 1, tzinfo=UTC)


def stored(i: int, category: str) -> StoredArticle:
    when = START + timedelta(hours=i)
    a = Article(
        id=f"t:{i}",
        source="t",
        title=f"Story {i}",
        body=f"<p>Body {i}</p>",
        published=when,
        updated=when,
        categories=(category,),
    )
    return StoredArticle(a, f"story-{i}", when, when, when, content_hash=a.content_hash)


def corpus(n: int) -> list[StoredArticle]:
    """``n`` articles, newest first: alternately Politics and Culture, and ten in Rare."""
    rare = set(range(0, n, n // 10))
    return [stored(i, "Rare" if i in rare else ("Politics", "Culture")[i % 2]) for i in range(n - 1, -1, -1)]


def build(tmp_path: Path, articles: list[StoredArticle]) -> Writer:
    config = config_mod.from_dict(
        {"site": {"title": "Test Daily", "base_url": BASE}}, tmp_path / "config.toml"
    )
    with Writer(tmp_path / "public", complete=True) as writer:
        writer.write_all(site.build(config, articles, []).items())
    return writer


def page(public: Path, path: str) -> lxml_html.HtmlElement:
    """A page with its links resolved as a browser would (pages link relatively)."""
    doc = lxml_html.fromstring((public / path).read_bytes())
    doc.make_links_absolute(BASE + path)
    return doc


def listed(doc: lxml_html.HtmlElement) -> list[str]:
    return [a.get("href") for a in doc.xpath("//ol[@class='archive']/li/a")]


def rel(doc: lxml_html.HtmlElement, kind: str) -> tuple[list[str], list[str]]:
    """The rel=``kind`` targets in <head> and in the page's navigation."""
    return doc.xpath(f"//head/link[@rel='{kind}']/@href"), doc.xpath(f"//main//a[@rel='{kind}']/@href")


def test_every_article_is_on_one_archive_page_and_the_pages_link_in_order(tmp_path: Path) -> None:
    articles = corpus(260)
    build(tmp_path, articles)
    public = tmp_path / "public"
    pages = [page(public, f"archive/{n}.html") for n in (1, 2, 3)]
    assert not (public / "archive/4.html").exists()
    seen = [href for doc in pages for href in listed(doc)]
    assert sorted(seen) == sorted(f"{BASE}articles/{a.slug}.html" for a in articles)
    assert len(listed(pages[0])) == 100 and len(listed(pages[2])) == 60
    assert listed(pages[0])[0] == f"{BASE}articles/story-99.html"  # newest first within a page
    assert listed(pages[0])[-1] == f"{BASE}articles/story-0.html"  # page 1: the oldest
    assert rel(pages[0], "prev") == ([], []) and rel(pages[0], "next") == ([f"{BASE}archive/2.html"],) * 2
    assert rel(pages[1], "prev") == ([f"{BASE}archive/1.html"],) * 2
    assert rel(pages[1], "next") == ([f"{BASE}archive/3.html"],) * 2
    assert rel(pages[2], "next") == ([], [])
    index = page(public, "index.html")
    assert f"{BASE}archive/3.html" in index.xpath("//main//a/@href")
    for doc in pages:
        assert len(doc.findall(".//h1")) == 1 and not doc.findall(".//script")
        assert doc.xpath("//head/link[@rel='canonical']/@href")[0].startswith(f"{BASE}archive/")


def test_categories_get_their_own_archive_when_they_outgrow_their_page(tmp_path: Path) -> None:
    articles = corpus(260)
    build(tmp_path, articles)
    public = tmp_path / "public"
    politics = [a for a in articles if a.article.categories == ("Politics",)]
    assert len(politics) > site.ARCHIVED
    docs = [page(public, f"categories/politics/archive/{n}.html") for n in (1, 2)]
    assert not (public / "categories/politics/archive/3.html").exists()
    assert sorted(href for doc in docs for href in listed(doc)) == sorted(
        f"{BASE}articles/{a.slug}.html" for a in politics
    )
    assert rel(docs[1], "prev") == ([f"{BASE}categories/politics/archive/1.html"],) * 2
    front = page(public, "categories/politics/index.html")
    assert f"{BASE}categories/politics/archive/2.html" in front.xpath("//main//a/@href")
    rare = page(public, "categories/rare/index.html")  # ten articles: its own page lists them all
    assert not (public / "categories/rare/archive").exists()
    assert not [h for h in rare.xpath("//main//a/@href") if "/archive/" in h]


def test_a_new_article_rewrites_only_the_newest_archive_pages(tmp_path: Path) -> None:
    articles = corpus(300)  # three full site pages
    build(tmp_path, articles)
    public = tmp_path / "public"
    before = {p: (public / p).stat().st_mtime_ns for p in ("archive/1.html", "archive/2.html")}
    assert build(tmp_path, articles).written == []
    newer = [stored(300, "Culture"), *articles]
    written = set(build(tmp_path, newer).written)
    assert {"archive/3.html", "archive/4.html", "articles/story-300.html", "index.html"} <= written
    assert not written & {"archive/1.html", "archive/2.html"}
    assert {p: (public / p).stat().st_mtime_ns for p in before} == before
    assert listed(page(public, "archive/4.html")) == [f"{BASE}articles/story-300.html"]
    assert rel(page(public, "archive/3.html"), "next") == ([f"{BASE}archive/4.html"],) * 2
    assert [p for p in written if "/archive/" in p] == ["categories/culture/archive/2.html"]
