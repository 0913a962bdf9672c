"""The store's schema history (publisher/store/migrations): a store written by the
release before Alembic (tests/fixtures/store_v3, made by that code) upgrades on first use
and loses nothing; the revisions form one line and build the schema the code declares;
a store newer than the code is refused in one line, untouched."""

from __future__ import annotations

import email
import hashlib
import mailbox
import shutil
import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from email.policy import default
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, text

from publisher.errors import StoreError
from publisher.store import Store, migrations, schema
from tests import pg
from tests.legacy_store import V3, on_server
from tests.sites import publish

postgresql = pg.postgresql
pg_url = pg.pg_url

OLD_TABLES = (
    "meta",
    "articles",
    "subscribers",
    "subscribe_requests",
    "digests",
    "digest_articles",
    "deliveries",
    "source_state",
    "mail_outbox",
    "leases",
    "job_runs",
)


@pytest.fixture
def v3_site(tmp_path: Path) -> Path:
    """A copy of the fixture site whose store.db the release before Alembic wrote."""
    folder = tmp_path / "site"
    shutil.copytree(V3, folder)
    return folder


def rows(db: Path, table: str, without: tuple[str, ...] = ()) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        names = [r[1] for r in conn.execute(f"PRAGMA table_info({table})") if r[1] not in without]
        listed = ", ".join(f'"{n}"' for n in names)
        found = sorted(conn.execute(f"SELECT {listed} FROM {table}").fetchall(), key=repr)
    conn.close()
    return found


def schema_differences(url: str) -> list:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return compare_metadata(MigrationContext.configure(conn), schema.metadata)
    finally:
        engine.dispose()


def test_the_revisions_form_one_line() -> None:
    scripts = migrations.scripts()
    assert len(scripts.get_heads()) == 1 and len(scripts.get_bases()) == 1
    chain = list(scripts.walk_revisions())  # head first; raises on a fork or a gap
    assert chain[-1].revision == "0001" and chain[0].revision == migrations.head()
    assert all(len(r._all_nextrev) <= 1 for r in chain), "two revisions build on the same one"
    # what Store.open reads without importing Alembic
    assert migrations.revisions() == {r.revision: r.down_revision for r in chain}


def test_a_store_made_by_the_release_before_alembic_upgrades_and_keeps_everything(v3_site: Path) -> None:
    db = v3_site / "store.db"
    assert rows(db, "meta") and dict(rows(db, "meta"))["schema_version"] == "3"
    before = {t: rows(db, t) for t in OLD_TABLES if t != "meta"}
    secret = dict(rows(db, "meta"))["secret"]

    Store.open(f"sqlite:///{db}").close()

    # columns revisions added since
    added = ("newsletter", "reply_code", "reply_status", "rendition_id", "claim_id")
    after = {t: rows(db, t, without=added) for t in OLD_TABLES if t != "meta"}
    assert after == before
    meta = dict(rows(db, "meta"))
    assert meta == {"schema_version": migrations.ALEMBIC_ERA, "secret": secret}
    assert rows(db, "alembic_version") == [(migrations.head(),)]
    assert rows(db, "digests", without=("html", "text", "subject", "created")) == [
        (1, "2026-12-04", "done", "digest")
    ]
    subscribed = {
        email: (newsletter, status, sections)
        for email, newsletter, status, sections in sqlite3.connect(db).execute(
            "SELECT email, newsletter, s.status, sections FROM subscriptions s "
            "JOIN subscribers ON subscribers.id = subscriber_id"
        )
    }
    assert subscribed == {
        "active1@example.com": ("digest", "active", "[]"),
        "active2@example.com": ("digest", "active", "[]"),
        "pending@example.com": ("digest", "pending", "[]"),
        "gone@example.com": ("digest", "unsubscribed", "[]"),
        "bounced@example.com": ("digest", "unsubscribed", "[]"),
    }
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    assert schema_differences(f"sqlite:///{db}") == []


def test_the_upgraded_site_keeps_working_unchanged(v3_site: Path) -> None:
    """The same readers get the next digest, and the articles keep their feed ids."""
    db = v3_site / "store.db"
    feed_ids = {r[0]: r[-1] for r in rows(db, "articles")}
    (v3_site / "articles" / "006_new.md").write_text(
        '+++\ntitle = "A story after the upgrade"\ndate = 2026-12-01T09:00:00+09:00\n'
        'categories = ["Nation"]\n+++\nIt arrived after the store was upgraded.\n',
        encoding="utf-8",
    )
    done = publish(v3_site, "now")
    assert "1 article" in done.stdout, done.stdout
    box = mailbox.Maildir(
        v3_site / "outbox", factory=lambda f: email.message_from_binary_file(f, policy=default), create=False
    )
    sent = list(box)
    assert sorted(str(m["To"]) for m in sent) == [
        "Active One <active1@example.com>",
        "활성 둘 <active2@example.com>",
    ]
    assert all("A story after the upgrade" in m.get_body(("plain",)).get_content() for m in sent)
    now = {r[0]: r[-1] for r in rows(db, "articles")}
    assert {k: v for k, v in now.items() if k in feed_ids} == feed_ids and len(now) == 6
    assert publish(v3_site, "status").returncode == 0


def test_a_new_store_is_the_declared_schema_at_the_head(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    Store.open(url).close()
    assert rows(tmp_path / "new.db", "alembic_version") == [(migrations.head(),)]
    assert schema_differences(url) == []


def test_revisions_from_version_1_build_the_declared_schema(tmp_path: Path) -> None:
    """Each pre-Alembic version maps to its revision: a version 1 store (no outbox, no
    feed ids) runs every revision."""
    db = tmp_path / "v1.db"
    shutil.copy(V3 / "store.db", db)
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE mail_outbox")
        conn.execute("DROP INDEX ix_articles_no_feed_id")
        conn.execute("ALTER TABLE articles DROP COLUMN feed_id")
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    conn.close()
    Store.open(f"sqlite:///{db}").close()
    assert schema_differences(f"sqlite:///{db}") == []
    assert len(rows(db, "subscriptions")) == 5


def digest_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    "change",
    [
        "UPDATE alembic_version SET version_num = '9001_from_the_future'",
        "DROP TABLE alembic_version; UPDATE meta SET value = '9' WHERE key = 'schema_version'",
    ],
)
def test_a_store_newer_than_the_code_is_refused_in_one_line_and_untouched(
    tmp_path: Path, change: str
) -> None:
    db = tmp_path / "store.db"
    Store.open(f"sqlite:///{db}").close()
    with sqlite3.connect(db) as conn:
        conn.executescript(change)
    conn.close()
    before = digest_of(db)
    with pytest.raises(StoreError) as refused:
        Store.open(f"sqlite:///{db}")
    message = str(refused.value)
    assert "\n" not in message and "newer than this publisher" in message and str(db) in message
    assert digest_of(db) == before


def test_the_command_line_refuses_a_newer_store_with_one_line(v3_site: Path) -> None:
    db = v3_site / "store.db"
    Store.open(f"sqlite:///{db}").close()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9001_from_the_future'")
    conn.close()
    done = publish(v3_site, "status", check=False)
    assert done.returncode != 0
    assert len(done.stderr.strip().splitlines()) == 1 and "upgrade publisher" in done.stderr


def open_at_once(url: str, programs: int) -> None:
    """``programs`` processes open the store ``url`` at the same time; each must succeed."""
    code = f"from publisher.store import Store; Store.open({url!r}).close()"
    with ThreadPoolExecutor(programs) as pool:
        runs = list(
            pool.map(
                lambda _: subprocess.run([sys.executable, "-c", code], capture_output=True, text=True),
                range(programs),
            )
        )
    assert [r.returncode for r in runs] == [0] * programs, [r.stderr for r in runs]


def test_two_programs_opening_an_old_store_at_once_upgrade_it_once(v3_site: Path) -> None:
    db = v3_site / "store.db"
    open_at_once(f"sqlite:///{db}", 4)
    assert len(rows(db, "subscriptions")) == 5
    assert schema_differences(f"sqlite:///{db}") == []


def test_a_store_made_by_the_release_before_alembic_upgrades_on_postgresql(pg_url: str) -> None:
    """The fixture's tables and rows, as they were, on a server; then the upgrade."""
    on_server(pg_url)
    target = create_engine(pg_url)
    try:
        store = Store.open(pg_url)
        try:
            assert store.subscribers.counts() == {"pending": 1, "active": 2, "unsubscribed": 1, "bounced": 1}
            assert [d.key for d in store.ledger.all_digests()] == ["2026-12-04"]
            assert store.ledger.delivery_counts() == {"sent": 2}
            assert store.sources.get("wire").state["etag"] == '"abc"'
            assert store.meta.get("schema_version") == migrations.ALEMBIC_ERA
        finally:
            store.close()
        with target.connect() as conn:
            subscribed = conn.execute(
                text("SELECT newsletter, status, count(*) FROM subscriptions GROUP BY 1, 2 ORDER BY 2")
            ).all()
            assert [tuple(r) for r in subscribed] == [
                ("digest", "active", 2),
                ("digest", "pending", 1),
                ("digest", "unsubscribed", 2),
            ]
            newsletters = conn.execute(text("SELECT DISTINCT newsletter FROM digests")).scalars().all()
            assert newsletters == ["digest"]
        assert schema_differences(pg_url) == []
    finally:
        target.dispose()


def test_programs_opening_an_old_store_on_postgresql_at_once_upgrade_it_once(pg_url: str) -> None:
    on_server(pg_url)
    open_at_once(pg_url, 3)
    engine = create_engine(pg_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM subscriptions")).scalar() == 5
    finally:
        engine.dispose()
    assert schema_differences(pg_url) == []


def test_a_new_store_on_postgresql_is_the_declared_schema(pg_url: str) -> None:
    Store.open(pg_url).close()
    assert schema_differences(pg_url) == []
