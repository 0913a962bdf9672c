"""An article's feed id is minted once, when it is first collected, and stored: moving
the site (``site.base_url``) changes every link but no id, so readers do not see
every item again as new. A store from schema version 1 (ids never stored) is
migrated, and the ids its feeds already showed are the ones it keeps."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import feedparser

from tests.legacy_store import as_written_before_alembic
from tests.sites import publish

OLD, NEW = "http://127.0.0.1:8000/", "https://news.example.com/edition/"


def ids_by_title(public: Path) -> dict[str, dict[str, str]]:
    """{format: {title: id}} for the site's RSS and Atom feeds."""
    return {
        name: {e.title: e.id for e in feedparser.parse((public / name).read_bytes()).entries}
        for name in ("rss.xml", "atom.xml")
    }


def move_site(site: Path, base_url: str) -> None:
    config = site / "config.toml"
    config.write_text(
        config.read_text("utf-8").replace(f'base_url = "{OLD}"', f'base_url = "{base_url}"'), "utf-8"
    )


def test_an_article_keeps_its_feed_id_when_base_url_changes(site: Path) -> None:
    publish(site, "now", "--no-email")
    before = ids_by_title(site / "public")
    move_site(site, NEW)
    publish(site, "now", "--no-email")
    after = ids_by_title(site / "public")
    assert after == before and len(after["atom.xml"]) == 9
    links = [e.link for e in feedparser.parse((site / "public" / "atom.xml").read_bytes()).entries]
    assert links and all(link.startswith(NEW) for link in links)


def test_a_version_1_store_is_migrated_and_keeps_the_ids_its_feeds_showed(site: Path) -> None:
    publish(site, "now", "--no-email")
    db = site / "publisher.db"
    as_written_before_alembic(db)
    with sqlite3.connect(db) as conn:  # make it the store an older publisher wrote
        conn.execute("DROP TABLE mail_outbox")  # version 2 added it, version 3 the feed ids
        conn.execute("DROP INDEX ix_articles_no_feed_id")
        conn.execute("ALTER TABLE articles DROP COLUMN feed_id")
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
        article_ids = [r[0] for r in conn.execute("SELECT id FROM articles")]
    shown_by_version_1 = {uuid.uuid5(uuid.NAMESPACE_URL, OLD + "#" + i).urn for i in article_ids}
    publish(site, "now", "--no-email")  # migrates, then mints the missing ids
    with sqlite3.connect(db) as conn:
        assert (
            conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "4"
        )  # Alembic keeps the revision now
        stored = {r[0] for r in conn.execute("SELECT feed_id FROM articles")}
    assert stored == shown_by_version_1
    move_site(site, NEW)
    publish(site, "now", "--no-email")
    assert set(ids_by_title(site / "public")["atom.xml"].values()) == shown_by_version_1
