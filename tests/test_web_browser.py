"""A reader in a real browser (headless chromium driven by Playwright): subscribe with
the form on the front page, follow the confirmation link from the outbox, confirm,
then leave with the unsubscribe link of a digest; on a site of several newsletters,
choose some, manage them from an issue's footer and get the next issues as chosen.
Screenshots land in tests/artifacts/."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.sites import ARTIFACTS, CHROMIUM_ARGS, publish, require_binary
from tests.three_newsletters import OFFERED, with_newsletters
from tests.wcag import CONTRAST
from tests.webserver import (
    OLD_SECRET,
    SECRET,
    Server,
    free_port,
    link_in,
    make_site,
    status_of,
    subscriptions_of,
    wait_for_mails,
)

pytestmark = pytest.mark.slow  # a real browser


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


def test_a_reader_chooses_newsletters_then_narrows_and_leaves_one_in_chromium(tmp_path: Path) -> None:
    chromium = require_binary("chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    env = {"PUBLISHER_SECRET": SECRET, "PUBLISHER_SECRET_PREVIOUS": OLD_SECRET}
    port = free_port()
    site = with_newsletters(make_site(tmp_path / "site", port), OFFERED)
    publish(site, "now", "--no-email", env=env)
    server = Server(site, port)
    ARTIFACTS.mkdir(exist_ok=True)
    email = "chooser.reader@example.com"
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 390, "height": 844})
            blocked: list[str] = []
            page.on(
                "console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None
            )

            # The front page offers the two signup newsletters, ticked; the reader keeps both.
            page.goto(server.url("/"))
            assert page.get_by_label("The Morning Briefing").is_checked()
            assert page.get_by_label("The Week in Korea").is_checked()
            assert page.get_by_label("Breaking News").count() == 0  # signup = false
            page.fill("#subscribe-email", email)
            page.screenshot(path=str(ARTIFACTS / "web-newsletters-1-form.png"), full_page=True)
            page.click("form.subscribe button[type=submit]")
            page.wait_for_selector("text=Check your inbox")
            [mail] = wait_for_mails(site, email, 1)
            text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
            assert "The Morning Briefing" in text and "The Week in Korea" in text
            assert subscriptions_of(site, email) == {"daily": ("pending", []), "weekly": ("pending", [])}

            page.goto(link_in(mail, "confirm"))
            page.wait_for_selector("text=Confirm your subscription")
            page.click("button:has-text('Confirm my subscription')")
            page.wait_for_selector("h1:has-text('You are subscribed')")
            page.screenshot(path=str(ARTIFACTS / "web-newsletters-2-subscribed.png"), full_page=True)
            assert subscriptions_of(site, email) == {"daily": ("active", []), "weekly": ("active", [])}

            # The first issues go out; the preference centre, from the daily's footer.
            publish(site, "now", env=env)
            issues = wait_for_mails(site, email, 3)[1:]
            by_list = {str(m["List-Id"]).rsplit("<", 1)[1].split(".", 1)[0]: m for m in issues}
            assert sorted(by_list) == ["daily", "weekly"]
            page.goto(link_in(by_list["daily"], "preferences"))
            page.wait_for_selector("h1:has-text('Your newsletters')")
            assert page.get_by_label("The Morning Briefing").is_checked()
            assert not page.get_by_label("Breaking News").is_checked()
            page.screenshot(path=str(ARTIFACTS / "web-newsletters-3-preferences.png"), full_page=True)
            sections = page.get_by_role("group", name="Sections of The Morning Briefing")
            sections.get_by_label("Sports").uncheck()  # narrow the daily to business and culture
            page.get_by_label("The Week in Korea").uncheck()  # leave the weekly
            page.click("button:has-text('Save my choices')")
            page.wait_for_selector("text=Your choices are saved")
            page.screenshot(path=str(ARTIFACTS / "web-newsletters-4-saved.png"), full_page=True)
            assert subscriptions_of(site, email) == {
                "daily": ("active", ["business", "culture"]),
                "weekly": ("unsubscribed", []),
            }
            assert not page.get_by_label("Sports").is_checked()  # the page shows what was saved

            # The next issues follow the change: a daily of its chosen sections, no weekly.
            for name, tag in (("zz-match", "Sports"), ("zz-market", "Business")):
                (site / "seeds" / f"{name}.md").write_text(
                    f'+++\ntitle = "A {tag.lower()} story"\npublished = 2025-06-02T09:00:00+09:00\n'
                    f'tags = ["{tag}"]\n+++\nBody.\n',
                    encoding="utf-8",
                )
            publish(site, "now", env=env)
            [*_, latest] = wait_for_mails(site, email, 4)
            assert "<daily." in str(latest["List-Id"])
            text = latest.get_body(("plain",)).get_content()  # type: ignore[union-attr]
            assert "A business story" in text and "A sports story" not in text
            assert len(wait_for_mails(site, email, 5, timeout=1)) == 4  # nothing from the weekly

            # Phone and desktop, light and dark: nothing scrolls sideways, every text legible.
            for scheme in ("light", "dark"):
                for width in (390, 1280):
                    context = browser.new_context(
                        viewport={"width": width, "height": 900}, color_scheme=scheme
                    )
                    shown = context.new_page()
                    for name, url in (("form", server.url("/")), ("preferences", page.url)):
                        shown.goto(url)
                        shown.screenshot(
                            path=str(ARTIFACTS / f"web-newsletters-{name}-{width}-{scheme}.png"),
                            full_page=True,
                        )
                        assert shown.evaluate("document.documentElement.scrollWidth") <= width, (name, width)
                        contrast = shown.evaluate(CONTRAST)
                        assert contrast["checked"] > 10 and not contrast["failures"], (name, scheme, contrast)
                        for box in shown.locator(".choice input[type=checkbox]").all():
                            size = box.bounding_box()
                            assert size is not None and size["width"] >= 18 and size["height"] >= 18
                    context.close()
            assert blocked == []
            browser.close()
    finally:
        server.stop()
