"""Feeds: every feed of the demo site parses cleanly and says the same complete thing.

The demo site is published once per module with the real ``publish`` command; every
feed file is parsed back with feedparser (RSS, Atom) or json (JSON Feed) and lxml.
"""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import pytest
from lxml import etree

from publisher import config as config_mod
from publisher import feeds, feedtext
from publisher.models import Article, Author, StoredArticle
from tests.feedcheck import assert_valid

BASE = "http://127.0.0.1:8000/"
NS = {
    "atom": "http://www.w3.org/2005/Atom",
    "dc": "http://purl.org/dc/elements/1.1/",
    "media": "http://search.yahoo.com/mrss/",
    "content": "http://purl.org/rss/1.0/modules/content/",
}
CATEGORY_COUNTS = {"business": 2, "culture": 2, "sports": 1}


def feed_paths() -> list[str]:
    prefixes = [""] + [f"categories/{slug}/" for slug in CATEGORY_COUNTS]
    return [p + name for p in prefixes for name in ("rss.xml", "atom.xml")]


def expected_count(path: str) -> int:
    parts = path.split("/")
    return CATEGORY_COUNTS[parts[1]] if parts[0] == "categories" else 9


@pytest.mark.parametrize("path", feed_paths())
def test_every_xml_feed_parses_without_error_and_has_every_item(demo_public: Path, path: str) -> None:
    raw = (demo_public / path).read_bytes()
    etree.fromstring(raw)  # strict XML: raises on anything malformed
    feed = feedparser.parse(raw)
    assert not feed.bozo, feed.get("bozo_exception")
    assert len(feed.entries) == expected_count(path)
    assert feed.feed.title.endswith("Korea JoongAng Daily")
    self_links = [ln.href for ln in feed.feed.links if ln.rel == "self"]
    assert self_links == [BASE + path]
    alternate = [ln.href for ln in feed.feed.links if ln.rel == "alternate"]
    home = BASE if "/" not in path else BASE + path.rsplit("/", 1)[0] + "/index.html"
    assert alternate == [home]
    assert feed.feed.language == "en"
    for entry in feed.entries:
        assert entry.id.startswith("urn:uuid:")
        assert entry.link.startswith(BASE + "articles/") and entry.link.endswith(".html")
        assert entry.title and entry.summary
        assert entry.content[0].value.startswith("<p>")
        assert entry.published_parsed and entry.author
    published = [e.published_parsed for e in feed.entries]
    assert published == sorted(published, reverse=True)


def test_every_feed_of_the_demo_passes_the_w3c_validator(demo_public: Path) -> None:
    assert_valid([demo_public / p for p in feed_paths()])


def test_rss_channel_link_is_the_site_and_dates_carry_the_site_offset(demo_public: Path) -> None:
    tree = etree.fromstring((demo_public / "rss.xml").read_bytes())
    channel = tree.find("channel")
    assert channel.findtext("link") == BASE
    assert channel.find("atom:link[@rel='self']", NS).get("href") == BASE + "rss.xml"
    dates = [d.text for d in tree.iter("pubDate")] + [channel.findtext("lastBuildDate")]
    assert dates and all(d.endswith(" +0900") for d in dates)
    # lastBuildDate is the newest content change, not the time of the run
    assert channel.findtext("lastBuildDate") == "Sun, 01 Jun 2025 09:00:00 +0900"
    assert channel.findtext("generator") == "publisher"
    # RSS <author> must be an email: names are dc:creator only
    assert not list(tree.iter("author"))
    openai = next(i for i in tree.iter("item") if i.findtext("title") == "OpenAI to open office in Seoul")
    assert [c.text for c in openai.findall("dc:creator", NS)] == ["Jeong Jae-hong"]
    assert openai.findtext("pubDate") == "Mon, 26 May 2025 14:50:00 +0900"


def test_atom_dates_authors_and_feed_level_author(demo_public: Path) -> None:
    raw = (demo_public / "atom.xml").read_bytes()
    tree = etree.fromstring(raw)
    stamps = [e.text for e in tree.iter(f"{{{NS['atom']}}}published", f"{{{NS['atom']}}}updated")]
    assert stamps and all(s.endswith("+09:00") for s in stamps)
    assert tree.findtext("atom:updated", namespaces=NS) == "2025-06-01T09:00:00+09:00"
    assert tree.findtext("atom:author/atom:name", namespaces=NS) == "Korea JoongAng Daily"
    feed = feedparser.parse(raw)
    chip = next(e for e in feed.entries if e.title.startswith("Chipmaker"))
    assert [a.name for a in chip.authors] == ["Seo Ji-eun", "Bae Jin-woo"]
    assert chip.published == "2025-05-29T10:15:00+09:00"
    assert chip.updated == "2025-05-29T15:30:00+09:00"
    openai = next(e for e in feed.entries if e.title == "OpenAI to open office in Seoul")
    assert openai.author == "Jeong Jae-hong"


def test_the_same_article_has_the_same_id_in_every_format_and_feed(demo_public: Path) -> None:
    ids: dict[str, set[str]] = {}
    for path in feed_paths():
        for e in feedparser.parse((demo_public / path).read_bytes()).entries:
            ids.setdefault(e.link, set()).add(e.id)
    for path in ["feed.json"] + [f"categories/{s}/feed.json" for s in CATEGORY_COUNTS]:
        for item in json.loads((demo_public / path).read_text("utf-8"))["items"]:
            ids.setdefault(item["url"], set()).add(item["id"])
    assert len(ids) == 9
    assert all(len(v) == 1 for v in ids.values())


@pytest.mark.parametrize("path", ["feed.json"] + [f"categories/{s}/feed.json" for s in CATEGORY_COUNTS])
def test_json_feed_has_every_field_json_feed_1_1_requires(demo_public: Path, path: str) -> None:
    feed = json.loads((demo_public / path).read_text("utf-8"))
    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    assert isinstance(feed["title"], str) and feed["title"]
    assert feed["feed_url"] == BASE + path
    assert feed["home_page_url"].startswith(BASE)
    assert isinstance(feed["items"], list) and len(feed["items"]) == expected_count(path)
    for item in feed["items"]:
        assert isinstance(item["id"], str) and item["id"]
        assert item.get("content_html") or item.get("content_text")
        for key in ("date_published", "date_modified"):
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+09:00", item[key])
            datetime.fromisoformat(item[key])
        assert item["url"].startswith(BASE)
        assert all(a["name"] for a in item.get("authors", [{"name": "x"}]))
    assert feed["authors"] == [{"name": "Korea JoongAng Daily"}]


def test_every_link_in_a_feed_lands_on_a_page_the_web_edition_wrote(demo_public: Path) -> None:
    for path in feed_paths():
        feed = feedparser.parse((demo_public / path).read_bytes())
        targets = [e.link for e in feed.entries] + [ln.href for ln in feed.feed.links]
        for url in targets:
            assert url.startswith(BASE)
            relative = url[len(BASE) :] or "index.html"
            assert (demo_public / relative).is_file(), url


# --- unit level: articles made here, feeds built in-process ---------------------------


def make_config(tmp_path: Path, **feeds_keys: object) -> config_mod.Config:
    data = {
        "site": {"title": "Test Daily", "base_url": BASE, "timezone": "Asia/Seoul"},
        "feeds": {"items": 50, **feeds_keys},
    }
    return config_mod.from_dict(data, tmp_path / "config.toml")


def stored(n: int, **fields: object) -> StoredArticle:
    when = datetime(2025, 5, 1, 3, 0, tzinfo=UTC) + timedelta(hours=n)
    article = Article(
        id=f"src:{n}",
        source="src",
        title=fields.pop("title", f"Article {n}"),  # type: ignore[arg-type]
        body=fields.pop("body", f"<p>Body {n}</p>"),  # type: ignore[arg-type]
        published=when,
        updated=when,
        **fields,  # type: ignore[arg-type]
    )
    return StoredArticle(article, f"article-{n}", when, when, when)


UNSAFE = stored(
    1,
    title="Bad\x00 title\x0b with <b>tags</b> & \ufffe stuff",
    body=(
        '<p onclick="steal()">Hello<script>alert(1)</script>\x01</p>'
        '<a href="javascript:alert(2)">x</a><img src="x.png" onerror="alert(3)">'
        "<iframe src='https://evil.example/'></iframe><style>p{}</style>"
    ),
    summary="Sum\x1fmary",
    authors=(Author("Ev\x08il <Name>", "evil@example.com\r\nBcc: x@example.com"),),
    categories=("Cat\x0cegory",),
    url="javascript:alert(4)",
    image="javascript:alert(5)",
)


def test_unsafe_content_and_forbidden_characters_never_reach_a_feed(tmp_path: Path) -> None:
    out = feeds.build(make_config(tmp_path), [UNSAFE])
    assert set(out) == {
        "rss.xml",
        "atom.xml",
        "feed.json",
        "categories/category/rss.xml",
        "categories/category/atom.xml",
        "categories/category/feed.json",
    }
    for path, data in out.items():
        text = data.decode("utf-8")
        assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe]", text), path
        lowered = text.lower()
        for bad in ("<script", "&lt;script", "javascript:", "onclick", "onerror", "iframe", "<style", "bcc:"):
            assert bad not in lowered, (path, bad)
        if path.endswith(".json"):
            item = json.loads(text)["items"][0]
            assert item["url"] == BASE + "articles/article-1.html" and "image" not in item
        else:
            etree.fromstring(data)
            feed = feedparser.parse(data)
            assert not feed.bozo
            title = feed.entries[0].title
            if path.endswith("rss.xml"):  # an end tag as text: "<" + WORD JOINER, not markup
                assert title == "Bad title with <b>tags<\u2060/b> & stuff"
            else:  # Atom: type="html", the text escaped
                assert feed.entries[0].title_detail.type == "text/html"
                assert html.unescape(title) == "Bad title with <b>tags</b> & stuff"
    assert_valid(out)


def test_an_article_with_an_image_carries_it_as_media_and_enclosure(tmp_path: Path) -> None:
    a = stored(2, image="/images/lanterns.jpg", categories=("Culture",))
    out = feeds.build(make_config(tmp_path), [a])
    rss = etree.fromstring(out["rss.xml"])
    media = rss.find(".//item/media:content", NS)
    assert media.get("url") == BASE + "images/lanterns.jpg"
    assert media.get("type") == "image/jpeg" and media.get("medium") == "image"
    atom = feedparser.parse(out["atom.xml"])
    assert [e.href for e in atom.entries[0].enclosures] == [BASE + "images/lanterns.jpg"]
    assert json.loads(out["feed.json"])["items"][0]["image"] == BASE + "images/lanterns.jpg"
    assert_valid(out)


def test_an_articles_own_url_is_its_link(tmp_path: Path) -> None:
    a = stored(3, url="https://upstream.example/story/3")
    out = feeds.build(make_config(tmp_path), [a])
    assert feedparser.parse(out["rss.xml"]).entries[0].link == "https://upstream.example/story/3"
    assert_valid(out)


def test_feeds_hold_the_newest_items_and_the_same_input_gives_the_same_bytes(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, items=5)
    articles = [stored(n, categories=("Even",) if n % 2 == 0 else ()) for n in range(20, 0, -1)]
    first = feeds.build(cfg, articles)
    assert first == feeds.build(cfg, list(articles))
    titles = [e.title for e in feedparser.parse(first["atom.xml"]).entries]
    assert titles == [f"Article {n}" for n in range(20, 15, -1)]
    even = [e.title for e in feedparser.parse(first["categories/even/rss.xml"]).entries]
    assert even == [f"Article {n}" for n in (20, 18, 16, 14, 12)]


def test_icon_and_logo_appear_in_every_format(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, icon="icon.png", logo="https://cdn.example/logo.png")
    out = feeds.build(cfg, [stored(1)])
    atom = etree.fromstring(out["atom.xml"])
    assert atom.findtext("atom:icon", namespaces=NS) == BASE + "icon.png"
    assert atom.findtext("atom:logo", namespaces=NS) == "https://cdn.example/logo.png"
    rss = etree.fromstring(out["rss.xml"])
    assert rss.findtext("channel/image/url") == "https://cdn.example/logo.png"
    assert rss.findtext("channel/image/link") == rss.findtext("channel/link")
    js = json.loads(out["feed.json"])
    assert (js["icon"], js["favicon"]) == ("https://cdn.example/logo.png", BASE + "icon.png")
    assert_valid(out)


def test_relative_links_and_images_in_content_are_made_absolute(tmp_path: Path) -> None:
    body = '<p><a href="/about.html">About</a> <img src="pics/a.png" alt="A"> <a href="https://x.example/">x</a></p>'
    out = feeds.build(make_config(tmp_path), [stored(4, body=body)])
    content = json.loads(out["feed.json"])["items"][0]["content_html"]
    assert 'href="http://127.0.0.1:8000/about.html"' in content
    assert 'src="http://127.0.0.1:8000/articles/pics/a.png"' in content
    assert 'href="https://x.example/"' in content
    entry = feedparser.parse(out["atom.xml"]).entries[0]
    assert "http://127.0.0.1:8000/about.html" in entry.content[0].value
    assert_valid(out)


def test_categories_that_slugify_alike_are_one_and_hangul_names_keep_their_letters(tmp_path: Path) -> None:
    articles = [
        stored(3, categories=("경제",)),
        stored(2, categories=("Business",)),
        stored(1, categories=("business", "경제")),
    ]
    out = feeds.build(make_config(tmp_path), articles)
    korean = sorted({p.split("/")[1] for p in out if p.startswith("categories/") and "business" not in p})
    assert korean == ["경제"]
    eco = feedparser.parse(out[f"categories/{korean[0]}/atom.xml"])
    assert eco.feed.title == "경제 — Test Daily" and [e.title for e in eco.entries] == [
        "Article 3",
        "Article 1",
    ]
    biz = feedparser.parse(out["categories/business/rss.xml"])
    assert biz.feed.title == "Business — Test Daily" and len(biz.entries) == 2
    again = feeds.build(make_config(tmp_path), articles)
    assert sorted(again) == sorted(out)
    assert_valid(out)


def test_credit_lines_travel_with_the_text_in_every_format(demo_public: Path) -> None:
    credit = "Translated from the JoongAng Ilbo using generative AI and edited by Korea JoongAng Daily staff."
    rss = feedparser.parse((demo_public / "rss.xml").read_bytes())
    atom = feedparser.parse((demo_public / "atom.xml").read_bytes())
    items = json.loads((demo_public / "feed.json").read_text(encoding="utf-8"))["items"]
    for entries in (rss.entries, atom.entries):
        openai = next(e for e in entries if e.title == "OpenAI to open office in Seoul")
        assert f"<em>{credit}</em>" in openai.content[0].value
    openai = next(i for i in items if i["title"] == "OpenAI to open office in Seoul")
    assert openai["content_html"].endswith(f"<p><em>{credit}</em></p>")


@pytest.mark.parametrize(
    "title",
    [
        "Council debates <script>… signage rules",
        "Why <b> is not <strong>",
        "Fish & chips > salad",
        "R&D and AT&T",
        "A&amp;B",  # reads as a character reference
        "Why </b> closes",  # reads as an end tag
    ],
)
def test_titles_with_markup_characters_are_plain_text_in_every_reader(tmp_path: Path, title: str) -> None:
    out = feeds.build(make_config(tmp_path), [stored(1, title=title)])
    rss = out["rss.xml"].decode("utf-8")
    item_title = re.search(r"<item>\s*<title>([^<]*)</title>", rss).group(1)
    assert "&lt;" not in item_title and "&gt;" not in item_title and "&amp;" not in item_title
    # RSS: hexadecimal references (&#x3C; &#x3E; &#x26;); what would still read as markup
    # carries an invisible word joiner, as RSS cannot say "plain text"
    marked = feedtext.reads_as_markup(title)
    rss_text = title.replace("</", "<\u2060/").replace("&amp;", "&\u2060amp;") if marked else title
    assert html.unescape(item_title) == rss_text
    atom = etree.fromstring(out["atom.xml"])
    entry_title = atom.find("atom:entry/atom:title", NS)
    if marked:  # Atom can say so: type="html", the text escaped
        assert (entry_title.get("type"), entry_title.text) == ("html", html.escape(title, quote=False))
    else:
        assert (entry_title.get("type"), entry_title.text) == ("text", title)
    for name, shown_as in (("rss.xml", rss_text), ("atom.xml", title)):
        parsed = feedparser.parse(out[name]).entries[0]
        shown = html.unescape(parsed.title) if parsed.title_detail.type == "text/html" else parsed.title
        assert shown == shown_as, name
    assert json.loads(out["feed.json"])["items"][0]["title"] == title
    assert_valid(out)


def test_an_item_without_text_has_no_empty_elements(tmp_path: Path) -> None:
    out = feeds.build(make_config(tmp_path), [stored(1, title="Only a headline", body="", summary="")])
    rss = out["rss.xml"].decode("utf-8")
    assert "<description" not in rss.split("<item>", 1)[1] and "content:encoded" not in rss
    atom = etree.fromstring(out["atom.xml"])
    entry = atom.find("atom:entry", NS)
    assert entry.find("atom:content", NS) is None
    assert entry.findtext("atom:summary", namespaces=NS) == "Only a headline"
    for element in atom.iter():
        assert element.text or len(element) or element.attrib, element.tag  # nothing blank
    assert_valid(out)


def test_every_date_is_in_whole_seconds(tmp_path: Path) -> None:
    when = datetime(2025, 5, 1, 3, 32, 14, 914923, tzinfo=UTC)
    a = StoredArticle(
        Article(id="src:f", source="src", title="Fractions", body="<p>x</p>"), "f", when, when, when
    )
    out = feeds.build(make_config(tmp_path), [a])
    for name, data in out.items():
        assert ".914923" not in data.decode("utf-8") and "914" not in data.decode("utf-8"), name
    assert json.loads(out["feed.json"])["items"][0]["date_published"] == "2025-05-01T12:32:14+09:00"
    atom = etree.fromstring(out["atom.xml"])
    assert atom.findtext("atom:entry/atom:published", namespaces=NS) == "2025-05-01T12:32:14+09:00"
    assert_valid(out)


def test_c1_control_characters_never_reach_a_feed(tmp_path: Path) -> None:
    a = stored(
        1,
        title="Quote\x93d\x9d title",
        body="<p>Body \x85with\x9d C1\x80 controls</p>",
        summary="Sum\x9dmary",
        authors=(Author("Na\x9dme"),),
    )
    out = feeds.build(make_config(tmp_path), [a])
    for name, data in out.items():
        assert not re.search("[\x80-\x9f]", data.decode("utf-8")), name
    item = json.loads(out["feed.json"])["items"][0]
    assert (item["title"], item["summary"], item["authors"]) == (
        "Quoted title",
        "Summary",
        [{"name": "Name"}],
    )
    assert_valid(out)
