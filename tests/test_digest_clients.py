"""The digest's HTML part as clients show it, and as a spam filter judges it.

Headless chromium renders the real message's HTML part at phone (375 px) and
desktop (600 px) widths, light and dark, with its <style> block and without it
(as Gmail shows it for a non-Google account), saving screenshots under
tests/artifacts/ and checking every text's contrast (WCAG 2.1 AA) from the
colours chromium computed; caniemail's data (tests/caniemail.py) says which CSS
and HTML Gmail, Outlook for Windows and Apple Mail lack, each gap needing a known
fallback; SpamAssassin's local rules (no network tests) score the whole message."""

from __future__ import annotations

import mailbox
import os
import re
import subprocess
from email import policy
from email.parser import BytesParser

import pytest

from publisher import audience, pipeline
from publisher import config as configuration
from publisher.store import Store
from tests.caniemail import FALLBACKS, FEATURES, features_used, notes, support
from tests.sites import ARTIFACTS, CHROMIUM_ARGS, demo_site, require_binary
from tests.wcag import CONTRAST


@pytest.fixture(scope="module")
def digest_message(tmp_path_factory):
    """The raw bytes of a real digest (the demo site plus a Korean-language article)."""
    site = demo_site(tmp_path_factory.mktemp("clients") / "site")
    (site / "seeds" / "950_korean.md").write_text(
        '+++\ntitle = "서울 지하철 새 노선 개통 — Seoul opens a new subway line"\n'
        "published = 2025-06-02T08:00:00+09:00\n"
        'authors = ["김민지"]\ntags = ["National"]\n'
        'summary = "서울시는 오늘 새 지하철 노선을 개통했다고 밝혔다. The city opened the line today."\n'
        "+++\n본문.\n",
        encoding="utf-8",
    )
    return sent_digest(site, "Demo Reader")


def sent_digest(site, reader_name):
    """Publish the site to one subscriber; the raw bytes of the digest it sent."""
    config = configuration.load(site / "config.toml")
    store = Store.open(config.store_url)
    audience.add(store, "reader@example.com", reader_name)
    store.close()
    pipeline.run(config, pipeline.Options())
    box = mailbox.Maildir(site / "outbox", create=False)
    [key] = box.keys()
    return box.get_bytes(key).replace(b"\n", b"\r\n")


KOREAN_STORIES = [
    (
        "정부, 수도권 광역급행철도 향방이 걸린 예산안 국회 제출",
        "정부는 오늘 수도권 광역급행철도 사업의 향방이 걸린 내년도 예산안을 국회에 제출했다. 여야는 다음 주부터 본격적인 심사에 들어간다.",
    ),
    (
        "서울 아파트 전셋값 열두 주 연속 상승, 세입자 부담 커져",
        "한국부동산원에 따르면 서울 아파트 전셋값이 열두 주 연속 올랐다. 전문가들은 공급 부족이 이어지면서 세입자들의 부담이 당분간 커질 것이라고 내다봤다.",
    ),
    (
        "국내 연구진, 차세대 반도체 소재 대량생산 기술 세계 최초 개발",
        "국내 연구진이 차세대 반도체 소재를 대량으로 생산할 수 있는 기술을 세계 최초로 개발했다고 과학기술정보통신부가 밝혔다.",
    ),
]


@pytest.fixture(scope="module")
def korean_digest(tmp_path_factory):
    """The raw bytes of a Korean-language site's digest (language "ko", Hangul stories)."""
    site = demo_site(tmp_path_factory.mktemp("clients-ko") / "site", seeds=False, language='"ko"')
    (site / "seeds").mkdir()
    for i, (title, summary) in enumerate(KOREAN_STORIES):
        (site / "seeds" / f"{i}.md").write_text(
            f'+++\ntitle = "{title}"\npublished = 2025-06-0{i + 1}T08:00:00+09:00\n'
            f'authors = ["김민지"]\ntags = ["사회"]\nsummary = "{summary}"\n+++\n본문.\n',
            encoding="utf-8",
        )
    return sent_digest(site, "김독자")


# Where a line ends inside a word of Hangul ("향|방이"): a character that starts a new
# line although neither it nor the one before it is a space.
BROKEN_WORDS = """() => {
    const broken = [];
    for (const el of document.querySelectorAll('.story-title a, .summary, .headlines a')) {
        for (const node of el.childNodes) {
            if (node.nodeType !== 3) continue;
            const text = node.textContent, range = document.createRange();
            let top = null;
            for (let i = 0; i < text.length; i++) {
                range.setStart(node, i); range.setEnd(node, i + 1);
                const rect = range.getClientRects()[0];
                if (!rect) continue;
                if (top !== null && rect.top > top + 2 && /\\S/.test(text[i]) && /\\S/.test(text[i - 1]))
                    broken.push(text.slice(Math.max(0, i - 3), i) + '|' + text.slice(i, i + 3));
                top = rect.top;
            }
        }
    }
    return broken;
}"""


@pytest.mark.parametrize("styles", ["style", "nostyle"])
def test_hangul_lines_break_between_words_at_phone_width(browser, korean_digest, styles):
    html = html_part(korean_digest)
    if styles == "nostyle":
        html = without_style_blocks(html)
    assert 'lang="ko"' in html
    page = browser.new_page(viewport={"width": 375, "height": 900})
    try:
        page.set_content(html, wait_until="load")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"digest-ko-375-light-{styles}.png"), full_page=True)
        lines = page.evaluate(
            "() => [...document.querySelectorAll('.summary')].map(e => e.getClientRects()[0].height)"
        )
        broken = page.evaluate(BROKEN_WORDS)
    finally:
        page.close()
    assert max(lines) > 60  # the summaries do wrap at this width
    assert broken == [], broken


@pytest.fixture(scope="module")
def browser():
    executable = require_binary("chromium")
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield b
        b.close()


def html_part(raw: bytes) -> str:
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    return msg.get_body(("html",)).get_content()


def without_style_blocks(html: str) -> str:
    """The HTML as Gmail shows it for a non-Google account: <style> blocks dropped
    (Outlook's conditional comments stay: they are comments to everyone else)."""
    return re.sub(r"<style[^>]*>.*?</style>", "", html, flags=re.S)


@pytest.mark.parametrize("styles", ["style", "nostyle"])
@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [375, 600])
def test_the_html_part_fits_phone_and_desktop_legible_in_light_and_dark(
    browser, digest_message, width, scheme, styles
):
    html = html_part(digest_message)
    if styles == "nostyle":
        html = without_style_blocks(html)
    page = browser.new_page(viewport={"width": width, "height": 900}, color_scheme=scheme)
    try:
        page.set_content(html, wait_until="load")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"digest-{width}-{scheme}-{styles}.png"), full_page=True)
        layout = page.evaluate(
            """() => {
                const c = document.querySelector('.container');
                const titles = [...document.querySelectorAll('.story-title')];
                return {
                    scroll: document.documentElement.scrollWidth,
                    container: c.getBoundingClientRect().width,
                    background: getComputedStyle(c).backgroundColor,
                    title: getComputedStyle(document.querySelector('.story-title a')).color,
                    offscreen: titles.filter(e => e.getBoundingClientRect().right > window.innerWidth + 1).length,
                    smallest: Math.min(...[...document.querySelectorAll('.summary, .story-title')]
                        .map(e => parseFloat(getComputedStyle(e).fontSize))),
                    wordBreak: getComputedStyle(titles[0]).wordBreak,
                    preheader: document.querySelector('.preheader').getClientRects().length,
                };
            }"""
        )
        contrast = page.evaluate(CONTRAST)
    finally:
        page.close()
    assert layout["scroll"] <= width, "the digest scrolls sideways"
    assert layout["offscreen"] == 0
    assert layout["container"] == (600 if width >= 600 else width)
    assert layout["smallest"] >= 14  # readable on a phone
    assert layout["wordBreak"] == "keep-all"  # Hangul breaks between words only
    assert layout["preheader"] == 0  # hidden
    if scheme == "dark" and styles == "style":
        assert layout["background"] == "rgb(28, 28, 28)" and layout["title"] == "rgb(242, 242, 242)"
    else:  # light, or a client that drops the style block: the inline light colours
        assert layout["background"] == "rgb(255, 255, 255)" and layout["title"] == "rgb(29, 29, 27)"
    assert contrast["checked"] > 30 and not contrast["failures"], contrast


def test_headings_never_skip_a_level_and_layout_tables_are_presentation(digest_message):
    html = html_part(digest_message)
    levels = [int(n) for n in re.findall(r"<h([1-6])\b", html)]
    assert levels[0] == 1 and levels.count(1) == 1
    assert all(b <= a + 1 for a, b in zip(levels, levels[1:], strict=False)), levels
    tables = re.findall(r"<table\b[^>]*>", html)
    assert tables and all('role="presentation"' in t for t in tables), tables
    # the inbox preview: the headlines, then a hidden spacer, before the masthead's text
    preheader = re.search(r'<div class="preheader"[^>]*>(.*?)</div>', html, re.S).group(1)
    assert preheader.count("\u200c") >= 50 and "display:none" in html[: html.index(preheader)]


def test_korean_text_is_drawn_with_a_hangul_font(browser, digest_message):
    fonts = subprocess.run(["fc-list", ":lang=ko", "family"], capture_output=True, text=True).stdout
    if not fonts.strip():
        pytest.skip("no Hangul font installed (tests/install.sh installs fonts-nanum)")
    page = browser.new_page(viewport={"width": 600, "height": 900})
    try:
        page.set_content(html_part(digest_message), wait_until="load")
        cdp = page.context.new_cdp_session(page)
        cdp.send("DOM.enable")
        cdp.send("CSS.enable")
        root = cdp.send("DOM.getDocument")["root"]["nodeId"]
        nodes = cdp.send("DOM.querySelectorAll", {"nodeId": root, "selector": ".story-title a"})["nodeIds"]
        used = []
        for node in nodes:
            text = cdp.send("DOM.getOuterHTML", {"nodeId": node})["outerHTML"]
            if "서울" in text:
                used = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
    finally:
        page.close()
    hangul_families = {line.split(",")[0].strip() for line in fonts.splitlines()}
    assert any(f["familyName"] in hangul_families and f["glyphCount"] > 0 for f in used), used


def test_spamassassin_local_rules_score_at_most_one(digest_message):
    spamassassin = require_binary("spamassassin")
    result = subprocess.run(
        [spamassassin, "-L", "-t"],
        input=digest_message,
        capture_output=True,
        timeout=120,
    )
    report = result.stdout.decode("utf-8", "replace")
    status = re.search(r"X-Spam-Status: (\w+), score=(-?[\d.]+)", report)
    assert status, report[-2000:]
    score = float(status.group(2))
    details = report[report.find("Content analysis details") :]
    (ARTIFACTS).mkdir(exist_ok=True)
    (ARTIFACTS / "digest-spamassassin.txt").write_text(details, encoding="utf-8")
    assert score <= 1.0, details


@pytest.fixture(scope="module")
def caniemail() -> object:
    if not FEATURES.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"caniemail data missing at {FEATURES}")
        pytest.skip(f"caniemail data missing at {FEATURES} (../shared/tools/caniemail)")
    return FEATURES


def test_every_feature_the_digest_uses_is_supported_or_has_a_known_fallback(caniemail, digest_message):
    html = html_part(digest_message)
    used = features_used(html)
    assert {"html-table", "css-padding", "css-max-width", "css-at-media", "html-h1-h6"} <= set(used)
    unsupported, partial = [], []
    for slug, where in sorted(used.items()):
        fallback = FALLBACKS.get(slug)
        for client, value in support(slug).items():
            if value.startswith("n"):
                if fallback is None or client not in fallback.clients:
                    unsupported.append(f"{slug} ({', '.join(sorted(where))}): {client} says {value!r}")
                elif not fallback.present(html):
                    unsupported.append(f"{slug}: the fallback for {client} is gone ({fallback.why})")
            elif value.startswith("a"):
                partial.append(f"{slug}: {client} partial ({value}): {notes(slug, value)}")
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "caniemail.txt").write_text(
        "Features the digest uses, partially supported (read the notes in caniemail):\n"
        + "\n".join(partial)
        + "\n",
        encoding="utf-8",
    )
    assert not unsupported, "\n".join(unsupported)


def test_the_caniemail_check_knows_an_unsupported_feature_when_it_sees_one(caniemail):
    html = '<html><body><div style="display:flex;position:absolute">x</div></body></html>'
    used = features_used(html)
    assert {"css-display-flex", "css-position", "html-div"} <= set(used)
    assert support("css-position")["outlook/windows"].startswith("n") and "css-position" not in FALLBACKS
