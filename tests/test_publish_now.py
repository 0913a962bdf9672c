"""`publish now` end to end on a copy of the demo site: real SQLite, real Maildir."""

import json

import feedparser

from tests.sites import correct_the_seed, mails


def test_first_run_publishes_feeds_and_sends_one_digest(site, run_publish):
    run_publish(site, "subscribers", "add", "reader@example.com", "--name", "Demo Reader")
    result = run_publish(site, "now", "--json")
    report = json.loads(result.stdout)
    assert report["collect"]["new"] == 9
    assert report["delivery"]["sent"] == 1
    for name in ("rss.xml", "atom.xml", "index.html"):
        assert (site / "public" / name).is_file()
    feed = feedparser.parse((site / "public" / "rss.xml").read_bytes())
    assert not feed.bozo
    assert len(feed.entries) == 9
    [msg] = mails(site)
    assert msg["To"] == "Demo Reader <reader@example.com>"
    assert msg.get_content_type() == "multipart/alternative"
    html = msg.get_body(("html",)).get_content()
    text = msg.get_body(("plain",)).get_content()
    assert "OpenAI to open office in Seoul" in html and "OpenAI to open office in Seoul" in text
    assert "<style" in html and 'style="' in html  # premailer inlined the stylesheet
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "reader@example.com" not in msg["List-Unsubscribe"]


def test_second_run_sends_nothing(any_store, run_publish):
    site = any_store
    run_publish(site, "subscribers", "add", "reader@example.com")
    run_publish(site, "now")
    result = run_publish(site, "now", "--json")
    report = json.loads(result.stdout)
    assert report["collect"]["unchanged"] == 9 and report["collect"]["new"] == 0
    assert report["digest"] is None and report["delivery"]["sent"] == 0
    assert report["files_written"] == []
    assert len(mails(site)) == 1


def test_edited_article_is_updated_not_duplicated(any_store, run_publish):
    site = any_store
    run_publish(site, "now")
    correct_the_seed(site)
    report = json.loads(run_publish(site, "now", "--json").stdout)
    assert (report["collect"]["new"], report["collect"]["updated"]) == (0, 1)
    feed = feedparser.parse((site / "public" / "atom.xml").read_bytes())
    assert len(feed.entries) == 9
    titles = [e.title for e in feed.entries]
    assert titles.count("OpenAI to open office in Seoul") == 1


def test_dry_run_changes_nothing(site, run_publish):
    run_publish(site, "subscribers", "add", "reader@example.com")
    result = run_publish(site, "now", "--dry-run", "--json")
    report = json.loads(result.stdout)
    assert report["collect"]["new"] == 9 and report["digest"]
    assert not (site / "public").exists()
    assert not (site / "outbox").exists()
    report = json.loads(run_publish(site, "now", "--json").stdout)
    assert report["collect"]["new"] == 9 and report["delivery"]["sent"] == 1


def test_no_email_builds_feeds_only(site, run_publish):
    run_publish(site, "subscribers", "add", "reader@example.com")
    run_publish(site, "now", "--no-email")
    assert (site / "public" / "rss.xml").exists()
    assert not (site / "outbox").exists()


def test_preview_writes_html_and_sends_nothing(site, run_publish):
    run_publish(site, "subscribers", "add", "reader@example.com")
    run_publish(site, "collect")
    preview = site / "preview.html"
    run_publish(site, "digest", "--preview", str(preview))
    assert "Kospi rebounds" in preview.read_text(encoding="utf-8")
    assert not (site / "outbox").exists()


def test_a_dry_run_or_a_preview_that_asks_to_send_is_refused_before_anything(site):
    import pytest

    from publisher import config as configuration
    from publisher import pipeline

    cfg = configuration.load(site / "config.toml")
    for options in (pipeline.Options(dry_run=True), pipeline.Options(preview=str(site / "p.html"))):
        with pytest.raises(ValueError, match="sends nothing"):
            pipeline.run(cfg, options, pipeline.EVERYTHING)
    assert not (site / "publisher.db").exists() and not (site / "p.html").exists()
    report = pipeline.run(
        cfg, pipeline.Options(dry_run=True), [s for s in pipeline.EVERYTHING if s is not pipeline.Step.SEND]
    )
    assert report.dry_run and report.collect is not None and report.collect.new == 9
    assert not (site / "public").exists() and not (site / "outbox").exists()


def test_init_creates_a_site_that_publishes(tmp_path, run_publish):
    folder = tmp_path / "newsite"
    import subprocess
    import sys

    subprocess.run([sys.executable, "-m", "publisher", "init", str(folder)], check=True)
    run_publish(folder, "subscribers", "add", "me@example.com")
    report = json.loads(run_publish(folder, "now", "--json").stdout)
    assert report["collect"]["new"] == 1 and report["delivery"]["sent"] == 1


def test_subscriber_commands(site, run_publish):
    assert run_publish(site, "subscribers", "add", "not-an-address", check=False).returncode == 2
    run_publish(site, "subscribers", "add", "Reader@Example.COM", "--name", "R")
    assert "already" in run_publish(site, "subscribers", "add", "reader@example.com").stdout
    run_publish(site, "subscribers", "remove", "reader@example.com")
    listed = run_publish(site, "subscribers", "list").stdout
    assert "unsubscribed" in listed
    again = run_publish(site, "subscribers", "add", "reader@example.com", check=False)
    assert again.returncode == 2 and "--resubscribe" in again.stderr


def test_init_quotes_any_title_into_valid_toml(tmp_path, run_publish):
    import subprocess
    import sys

    from publisher import config as configuration

    folder = tmp_path / "quoted"
    title = 'Busan "Harbour" Times \\ 부산, Ltd.'
    subprocess.run([sys.executable, "-m", "publisher", "init", str(folder), "--title", title], check=True)
    cfg = configuration.load(folder / "config.toml")
    assert cfg.site.title == title
    assert cfg.digest.from_.endswith("<digest@example.com>")
    run_publish(folder, "now", "--no-email")


def test_the_report_reads_naturally_with_one_digest_and_with_newsletters(site, run_publish):
    """The digest's issue is named by its date (not "digest digest/DATE"); a step that
    makes no issue does not talk about the digest; a site with newsletters names issues."""
    from tests.three_newsletters import with_newsletters

    run_publish(site, "subscribers", "add", "reader@example.com")
    first = run_publish(site, "now").stdout.splitlines()
    [issue] = [line for line in first if "article" in line and not line.startswith("articles:")]
    assert issue.startswith("digest of 20") and "digest/" not in issue, first
    assert run_publish(site, "collect").stdout.splitlines()[-1].startswith("articles: ")
    assert "digest" not in run_publish(site, "feeds").stdout
    assert (
        run_publish(site, "now", "--dry-run").stdout.splitlines()[-1]
        == "dry run: digest: nothing new to send"
    )
    with_newsletters(site)
    made = run_publish(site, "now", "--newsletter", "daily").stdout.splitlines()
    assert made[-1].startswith("issue daily/20"), made
    again = run_publish(site, "now", "--newsletter", "daily").stdout.splitlines()
    assert again[-1] == "newsletters: nothing new to send", again


def test_the_report_says_what_another_sender_is_still_sending(site):
    from publisher.cli.steps import _summary
    from publisher.config import load
    from publisher.delivery.sender import SendReport
    from publisher.pipeline import RunReport

    cfg = load(site / "config.toml")
    joined = _summary(
        cfg, RunReport(delivery=SendReport(sent=200, elsewhere=32)), "delivered: nothing queued"
    )
    assert joined.endswith(f"0 failed ({cfg.delivery.maildir}); 32 being sent by another sender of the site")
    idle = _summary(cfg, RunReport(delivery=SendReport(elsewhere=400)), "delivered: nothing queued")
    assert idle.startswith("delivered: 0 sent,") and idle.endswith(
        "; 400 being sent by another sender of the site"
    )
