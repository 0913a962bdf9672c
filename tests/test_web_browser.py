"""A reader in a real browser (headless chromium driven by Playwright): subscribe with
the form on the front page, follow the confirmation link from the outbox, confirm,
then leave with the unsubscribe link of a digest. Screenshots land in tests/artifacts/."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.sites import ARTIFACTS, CHROMIUM_ARGS, publish, require_binary
from tests.webserver import (
    OLD_SECRET,
    SECRET,
    Server,
    free_port,
    link_in,
    make_site,
    status_of,
    wait_for_mails,
)


def test_a_reader_subscribes_confirms_and_unsubscribes_in_chromium(tmp_path: Path) -> None:
    chromium = require_binary("chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    env = {"PUBLISHER_SECRET": SECRET, "PUBLISHER_SECRET_PREVIOUS": OLD_SECRET}
    port = free_port()
    site = make_site(tmp_path / "site", port)
    publish(site, "now", "--no-email", env=env)
    server = Server(site, port)
    ARTIFACTS.mkdir(exist_ok=True)
    email = "browser.reader@example.com"
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 900, "height": 900})
            blocked: list[str] = []  # the pages' CSP must let their own stylesheet through
            page.on(
                "console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None
            )

            page.goto(server.url("/"))
            page.fill("#subscribe-email", email)
            page.screenshot(path=str(ARTIFACTS / "web-1-front-page.png"), full_page=False)
            page.click("form.subscribe button[type=submit]")
            page.wait_for_selector("text=Check your inbox")
            page.screenshot(path=str(ARTIFACTS / "web-2-check-your-inbox.png"))
            [mail] = wait_for_mails(site, email, 1)
            assert status_of(site, email) == "pending"

            page.goto(link_in(mail, "confirm"))
            page.wait_for_selector("text=Confirm your subscription")
            page.screenshot(path=str(ARTIFACTS / "web-3-confirm.png"))
            assert status_of(site, email) == "pending"  # opening the link changed nothing
            page.click("button:has-text('Confirm my subscription')")
            page.wait_for_selector("h1:has-text('You are subscribed')")
            page.screenshot(path=str(ARTIFACTS / "web-4-subscribed.png"))
            assert status_of(site, email) == "active"

            publish(site, "now", env=env)
            [*_, digest] = wait_for_mails(site, email, 2)
            unsubscribe = digest["List-Unsubscribe"].split(",")[0].strip().strip("<>")
            html = digest.get_body(("html",)).get_content()  # type: ignore[union-attr]
            assert unsubscribe in html.replace("&amp;", "&")  # the footer link is the same

            page.goto(unsubscribe)
            page.wait_for_selector("button:has-text('Unsubscribe')")
            page.screenshot(path=str(ARTIFACTS / "web-5-unsubscribe.png"))
            assert status_of(site, email) == "active"
            page.click("button:has-text('Unsubscribe')")
            page.wait_for_selector("h1:has-text('You are unsubscribed')")
            page.screenshot(path=str(ARTIFACTS / "web-6-unsubscribed.png"))
            assert status_of(site, email) == "unsubscribed"
            assert blocked == []
            browser.close()
    finally:
        server.stop()
