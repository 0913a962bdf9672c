"""Collection through the real ``publish`` command on a copy of the demo site: a
failing feed beside working sources, embargoes and withdrawals as readers see them."""

from __future__ import annotations

import json

import feedparser

from tests.feed_server import answer

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Wire</title><id>urn:wire</id>
<updated>2025-05-28T00:00:00Z</updated>
<entry><title>Wire story</title><id>urn:wire:1</id><link href="https://wire.example/1"/>
<published>2025-05-28T09:00:00+09:00</published><updated>2025-05-28T09:00:00+09:00</updated>
<content type="html">&lt;p&gt;From the wire.&lt;script&gt;x()&lt;/script&gt;&lt;/p&gt;</content></entry>
</feed>
"""


def add_sources(site, *tables: str) -> None:
    with open(site / "config.toml", "a", encoding="utf-8") as fh:
        for table in tables:
            fh.write("\n[[sources]]\n" + table + "\n")


def test_a_failing_feed_does_not_stop_the_run(site, run_publish, upstream):
    upstream.routes["/down"] = answer(500, b"")
    upstream.routes["/wire"] = answer(200, ATOM.encode(), Content_Type="application/atom+xml")
    add_sources(
        site,
        f'type = "feed"\nurl = "{upstream.url("/down")}"\nname = "down"',
        f'type = "feed"\nurl = "{upstream.url("/wire")}"\nname = "wire"\ncategory = "Wire"',
    )
    result = run_publish(site, "now", "--no-email", "--json")
    report = json.loads(result.stdout)["collect"]
    assert report["new"] == 10 and report["failed_sources"] == [upstream.url("/down")]
    assert f"{upstream.url('/down')}: HTTP 500" in result.stderr
    feed = feedparser.parse((site / "public" / "atom.xml").read_bytes())
    [wire] = [e for e in feed.entries if e.title == "Wire story"]
    assert "script" not in wire.content[0].value and "From the wire." in wire.content[0].value
    assert [t.term for t in wire.tags] == ["Wire"]  # the source's category


def test_embargoed_article_is_held_back_from_feeds_and_digest(site, run_publish):
    (site / "seeds" / "zz_embargo.txt").write_text(
        "Embargoed results\nPublished: 2099-01-01 09:00\nNot before its time.\n", encoding="utf-8"
    )
    run_publish(site, "subscribers", "add", "reader@example.com")
    summary = run_publish(site, "collect").stdout
    assert "10 new" in summary and "1 embargoed" in summary
    report = json.loads(run_publish(site, "now", "--json").stdout)
    assert report["delivery"]["sent"] == 1
    feed = feedparser.parse((site / "public" / "rss.xml").read_bytes())
    assert len(feed.entries) == 9
    assert "Embargoed results" not in (site / "public" / "rss.xml").read_text(encoding="utf-8")
    assert "Embargoed results" not in (site / "public" / "index.html").read_text(encoding="utf-8")
    digests = list((site / "public" / "digests").glob("2*.html"))
    assert digests and all("Embargoed results" not in d.read_text(encoding="utf-8") for d in digests)


def test_a_deleted_file_leaves_the_feeds_but_not_the_sent_digest(site, run_publish):
    run_publish(site, "subscribers", "add", "reader@example.com")
    run_publish(site, "now")
    (site / "seeds" / "000_8e4dca2d4b25ece8.txt").unlink()
    result = run_publish(site, "-v", "now", "--json")
    assert json.loads(result.stdout)["collect"]["withdrawn"] == 1
    assert "withdrawn" in result.stderr
    rss = (site / "public" / "rss.xml").read_text(encoding="utf-8")
    assert "OpenAI to open office in Seoul" not in rss
    [digest] = [d for d in (site / "public" / "digests").glob("2*.html")]
    assert "OpenAI to open office in Seoul" in digest.read_text(encoding="utf-8")
