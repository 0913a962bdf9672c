"""examples/ko end to end: a Korean newsroom (Hangul title, language "ko", Korean
articles) publishes its web edition and sends its digest, and every word a reader
sees is Korean. Its pages work opened as files and served on any port (chromium)."""

from __future__ import annotations

import mailbox
import re
import shutil
from email import policy
from email.parser import BytesParser
from pathlib import Path
from urllib.parse import unquote

import pytest
from lxml import html as lxml_html

from tests.sites import CHROMIUM_ARGS, ROOT, publish, require_binary
from tests.webserver import Server, free_port

EXAMPLE = ROOT / "examples" / "ko"
# Words a Korean page may show in Latin letters: names of formats, and what the
# articles themselves spell so (AI, an e-mail placeholder).
ALLOWED = {"RSS", "Atom", "JSON", "Feed", "AI", "you", "example", "com"}


def korean_site(tmp_path: Path, port: int | None = None) -> Path:
    site = tmp_path / "ko"
    shutil.copytree(EXAMPLE, site, ignore=shutil.ignore_patterns("public", "outbox", "publisher.db*"))
    if port is not None:
        cfg = site / "config.toml"
        cfg.write_text(
            re.sub(r'base_url = ".*?"', f'base_url = "http://127.0.0.1:{port}/"', cfg.read_text("utf-8")),
            encoding="utf-8",
        )
    return site


def latin_words(text: str) -> set[str]:
    text = re.sub(r"\S+@\S+|https?://\S+", " ", text)  # addresses and URLs are not words
    return set(re.findall(r"[A-Za-z]{2,}", text)) - ALLOWED


def visible_text(doc: lxml_html.HtmlElement) -> str:
    for bad in doc.xpath("//style | //script | //head"):
        bad.drop_tree()
    attrs = " ".join(doc.xpath("//@alt | //@title | //@placeholder | //@aria-label"))
    return doc.text_content() + " " + attrs


def test_the_korean_demo_publishes_and_mails_only_korean(tmp_path: Path) -> None:
    site = korean_site(tmp_path)
    publish(site, "subscribers", "add", "reader@example.com", "--name", "김민지")
    out = publish(site, "now").stdout
    assert "digest " in out and "1 sent" in out
    public = site / "public"
    pages = sorted(public.rglob("*.html"))  # the digest's web copy too
    assert any(p.parent.name == "articles" and re.search("[가-힣]", p.name) for p in pages)
    assert not [p for p in pages if p.parent.name == "articles" and not re.search("[가-힣]", p.name)]
    for page in pages:
        doc = lxml_html.fromstring(page.read_bytes())
        assert doc.get("lang") == "ko"
        assert not latin_words(visible_text(doc)), (page.relative_to(public), latin_words(visible_text(doc)))
    article = next(p for p in pages if p.name.startswith("서울-지하철"))
    assert "2025년 5월 26일 (월) 오후 2:50" in article.read_text("utf-8")
    box = mailbox.Maildir(site / "outbox", create=False)
    [raw] = [box.get_bytes(k) for k in box.keys()]
    assert all(line.isascii() for line in raw.split(b"\n\n", 1)[0].split(b"\n"))
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    assert msg["List-Id"] == "한강일보 <digest.hangang.example.com>"
    subject = str(msg["Subject"])
    assert subject.startswith("한강일보") and not latin_words(subject), subject
    html = msg.get_body(("html",)).get_content()
    text = msg.get_body(("plain",)).get_content()
    assert not latin_words(visible_text(lxml_html.fromstring(html))), latin_words(
        visible_text(lxml_html.fromstring(html))
    )
    assert not latin_words(text), latin_words(text)
    for title in ("서울 지하철 9호선 연장 구간, 다음 달 개통", "청계천 따라 빛나는 연등 700개"):
        assert title in html and title in text


def test_the_english_demo_is_unchanged_by_the_korean_one(site, run_publish) -> None:
    run_publish(site, "now", "--no-email")
    index = (site / "public" / "index.html").read_text("utf-8")
    assert "<h1>Latest news</h1>" in index and 'lang="en"' in index
    article = next((site / "public" / "articles").glob("openai-*.html")).read_text("utf-8")
    assert "26 May 2025, 14:50" in article and "By Jeong Jae-hong" in article


def test_the_korean_pages_work_as_files_and_on_any_port_in_chromium(tmp_path: Path) -> None:
    chromium = require_binary("chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    site = korean_site(tmp_path, port=free_port())  # base_url names one port ...
    publish(site, "now", "--no-email")
    other = free_port()
    server = Server(site, other)  # ... the server listens on another
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 375, "height": 800})
            for start in ((site / "public" / "index.html").as_uri(), server.url("/index.html")):
                page.goto(start)
                styled = page.evaluate("getComputedStyle(document.body).wordBreak")
                assert styled == "keep-all", start  # site.css loaded, Hangul kept whole
                page.click("ol.teasers h2 a >> nth=0")
                page.wait_for_load_state()
                assert "/articles/" in unquote(page.url) and page.url.split(":")[0] == start.split(":")[0]
                assert page.evaluate("getComputedStyle(document.body).wordBreak") == "keep-all"
                page.click("nav.sections a >> nth=0")
                page.wait_for_load_state()
                assert "/categories/" in unquote(page.url)
                page.click(".site-title a")
                page.wait_for_load_state()
                assert page.locator("h1").first.inner_text() == "최신 뉴스"
            browser.close()
    finally:
        server.stop()


def test_the_korean_subscribe_pages_speak_korean(tmp_path: Path) -> None:
    port = free_port()
    site = korean_site(tmp_path, port=port)
    publish(site, "now", "--no-email")
    server = Server(site, port)
    try:
        form = server.client.get("/subscribe")
        assert form.status_code == 200 and "구독하기" in form.text
        missing = server.client.get("/nope/deeper")
        assert missing.status_code == 404 and "페이지를 찾을 수 없습니다" in missing.text
        doc = lxml_html.fromstring(missing.text)
        assert doc.xpath("//link[@rel='stylesheet']/@href") == ["/site.css"]  # from the base path
        assert not latin_words(visible_text(doc))
    finally:
        server.stop()
