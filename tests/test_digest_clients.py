"""The digest's HTML part as clients show it, and as a spam filter judges it.

Headless chromium renders the real message's HTML part at phone (375 px) and
desktop (600 px) widths and in dark mode, saving screenshots under
tests/artifacts/; SpamAssassin's local rules (no network tests) score the whole
message."""

from __future__ import annotations

import mailbox
import re
import subprocess
from email import policy
from email.parser import BytesParser

import pytest

from publisher import audience, pipeline
from publisher import config as configuration
from publisher.store import Store
from tests.conftest import ARTIFACTS, CHROMIUM_ARGS, require_binary


@pytest.fixture(scope="module")
def digest_message(tmp_path_factory):
    """The raw bytes of a real digest (the demo site plus a Korean-language article)."""
    import shutil

    from tests.conftest import ROOT

    site = tmp_path_factory.mktemp("clients") / "site"
    site.mkdir()
    shutil.copy(ROOT / "config.toml", site / "config.toml")
    shutil.copytree(ROOT / "seeds", site / "seeds")
    (site / "seeds" / "950_korean.md").write_text(
        '+++\ntitle = "서울 지하철 새 노선 개통 — Seoul opens a new subway line"\n'
        "published = 2025-06-02T08:00:00+09:00\n"
        'authors = ["김민지"]\ntags = ["National"]\n'
        'summary = "서울시는 오늘 새 지하철 노선을 개통했다고 밝혔다. The city opened the line today."\n'
        "+++\n본문.\n",
        encoding="utf-8",
    )
    config = configuration.load(site / "config.toml")
    store = Store.open(config.store_url)
    audience.add(store, "reader@example.com", "Demo Reader")
    store.close()
    pipeline.run(config, pipeline.Options())
    box = mailbox.Maildir(site / "outbox", create=False)
    [key] = box.keys()
    return box.get_bytes(key).replace(b"\n", b"\r\n")


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


@pytest.mark.parametrize("width,scheme", [(375, "light"), (600, "light"), (375, "dark")])
def test_the_html_part_fits_phone_and_desktop_in_light_and_dark(browser, digest_message, width, scheme):
    page = browser.new_page(viewport={"width": width, "height": 900}, color_scheme=scheme)
    try:
        page.set_content(html_part(digest_message), wait_until="load")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"digest-{width}-{scheme}.png"), full_page=True)
        layout = page.evaluate(
            """() => {
                const c = document.querySelector('.container');
                const h3 = [...document.querySelectorAll('.story h3')].map(e => e.getBoundingClientRect());
                return {
                    scroll: document.documentElement.scrollWidth,
                    container: c.getBoundingClientRect().width,
                    background: getComputedStyle(c).backgroundColor,
                    title: getComputedStyle(document.querySelector('.story h3 a')).color,
                    offscreen: h3.filter(r => r.right > window.innerWidth + 1).length,
                    smallest: Math.min(...[...document.querySelectorAll('.summary, .story h3')]
                        .map(e => parseFloat(getComputedStyle(e).fontSize))),
                };
            }"""
        )
    finally:
        page.close()
    assert layout["scroll"] <= width, "the digest scrolls sideways"
    assert layout["offscreen"] == 0
    assert layout["container"] == (600 if width >= 600 else width)
    assert layout["smallest"] >= 14  # readable on a phone
    if scheme == "dark":
        assert layout["background"] == "rgb(28, 28, 28)" and layout["title"] == "rgb(242, 242, 242)"
    else:
        assert layout["background"] == "rgb(255, 255, 255)" and layout["title"] == "rgb(29, 29, 27)"


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
        nodes = cdp.send("DOM.querySelectorAll", {"nodeId": root, "selector": ".story h3 a"})["nodeIds"]
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
