"""The issues' archive: ``digests/<newsletter>/<YYYY-MM-DD>[-N].html`` and an index
per newsletter; the single-digest site's old addresses keep working."""

from __future__ import annotations

from tests.newsletter_site import mails_to, newsletter_of, subscribe, today, with_newsletters


def test_each_newsletter_has_its_archive_and_index(site, run_publish):
    with_newsletters(site)
    subscribe(site, "reader@example.com", "daily", "money")
    run_publish(site, "now")
    public, day = site / "public", today()
    for key in ("daily", "money", "weekend"):
        page = (public / "digests" / key / f"{day}.html").read_text(encoding="utf-8")
        assert "@@" not in page and "unsubscribe" not in page.lower()
        index = (public / "digests" / key / "index.html").read_text(encoding="utf-8")
        assert f'digests/{key}/{day}.html"' in index
    money = (public / "digests" / "money" / f"{day}.html").read_text(encoding="utf-8")
    assert "Exports rise for fourth month" in money and "Kospi rebounds" not in money
    top = (public / "digests" / "index.html").read_text(encoding="utf-8")
    for key, title in (("daily", "The Morning Briefing"), ("money", "Money Matters")):
        assert f'digests/{key}/index.html"' in top and title in top
    # "View in browser" in each mail lands on its own newsletter's page.
    for msg in mails_to(site, "reader@example.com"):
        key = newsletter_of(msg)
        assert f"http://127.0.0.1:8000/digests/{key}/{day}.html" in msg.get_body(("html",)).get_content()


def test_the_single_digest_keeps_its_old_addresses(site, run_publish):
    run_publish(site, "subscribers", "add", "reader@example.com")
    run_publish(site, "now")
    public, day = site / "public", today()
    new = (public / "digests" / "digest" / f"{day}.html").read_text(encoding="utf-8")
    old = (public / "digests" / f"{day}.html").read_text(encoding="utf-8")  # links already sent
    assert new == old and "Kospi rebounds" in old
    assert f'digests/digest/{day}.html"' in (public / "digests" / "digest" / "index.html").read_text(
        encoding="utf-8"
    )
    assert (public / "digests" / "index.html").is_file()
