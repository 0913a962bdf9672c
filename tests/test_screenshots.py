"""The rendered index, a category and an article page in headless chromium at phone
and desktop widths: no horizontal overflow, readable text, and PNGs saved under
tests/artifacts/ to look at."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.httpserve import serve_folder
from tests.sites import ARTIFACTS, CHROMIUM_ARGS, edit_config, publish, require_binary

playwright_api = pytest.importorskip("playwright.sync_api")

WIDTHS = {"phone": (390, 844), "desktop": (1280, 900)}
PAGES = {
    "index": "index.html",
    "category": "categories/business/index.html",
    "article": "articles/openai-to-open-office-in-seoul.html",
}


@pytest.fixture(scope="module")
def browser():
    executable = require_binary("chromium")
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield b
        b.close()


def test_pages_render_without_overflow_at_phone_and_desktop_widths(site: Path, browser) -> None:
    # serve first, then publish with base_url pointing at the live server, so every
    # absolute link and stylesheet-free page loads from it
    out = site / "public"
    out.mkdir(exist_ok=True)
    with serve_folder(out) as base:
        edit_config(site, 'base_url = "http://127.0.0.1:8000/"', f'base_url = "{base}"')
        publish(site, "now", "--no-email")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for device, (width, height) in WIDTHS.items():
            context = browser.new_context(
                viewport={"width": width, "height": height}, java_script_enabled=False
            )
            page = context.new_page()
            for name, path in PAGES.items():
                response = page.goto(base + path)
                assert response is not None and response.ok
                shot = ARTIFACTS / f"web-{name}-{device}.png"
                page.screenshot(path=str(shot), full_page=True)
                assert shot.stat().st_size > 5000
                scroll_width = page.evaluate("document.documentElement.scrollWidth")
                assert scroll_width <= width, (name, device, scroll_width)
                size = page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
                assert size > 16.5, (name, device, size)  # the stylesheet loaded (17px)
                h1 = page.locator("h1")
                assert h1.count() == 1 and h1.first.is_visible()
                skip = page.locator("a.skip")
                assert not skip.is_visible() or skip.bounding_box()["x"] < 0
            if device == "phone":
                box = page.locator("main").bounding_box()
                assert box is not None and box["width"] <= width
            context.close()
        # dark mode: the stylesheet's prefers-color-scheme rules apply
        context = browser.new_context(viewport={"width": 390, "height": 844}, color_scheme="dark")
        page = context.new_page()
        page.goto(base + PAGES["article"])
        page.screenshot(path=str(ARTIFACTS / "web-article-phone-dark.png"), full_page=True)
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(20, 20, 20)", background
        context.close()
