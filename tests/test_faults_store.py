"""The store under faults the machine or another program causes: a write lock held
by another process, an immutable database, a disk that fills mid-run, a damaged
page, a zero-length file. Each is one line naming the database and what to do,
exit 1, never a traceback; what was stored before stays."""

from __future__ import annotations

import socket
import sqlite3
import time
from pathlib import Path

import pytest

from tests.faults import damage_table, failure_line, fill, immutable, resize, tmpfs, write_lock_held


def set_store(site: Path, extra: str) -> None:
    cfg = site / "config.toml"
    text = cfg.read_text(encoding="utf-8")
    cfg.write_text(
        text.replace('[store]\nurl = "sqlite:///publisher.db"\n', f"[store]\n{extra}"), encoding="utf-8"
    )


def subscribers_and_digests(db: Path) -> tuple[list[str], int]:
    with sqlite3.connect(db) as conn:
        emails = [r[0] for r in conn.execute("SELECT email FROM subscribers ORDER BY email")]
        digests = conn.execute("SELECT count(*) FROM digests").fetchone()[0]
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    return emails, digests


def test_a_write_lock_held_by_another_process_waits_lock_wait_then_says_so(site, run_publish):
    set_store(site, 'url = "sqlite:///publisher.db"\nlock_wait = 1\n')
    run_publish(site, "subscribers", "add", "reader@example.com")
    db = site / "publisher.db"
    with write_lock_held(db):
        t0 = time.monotonic()
        result = run_publish(site, "now", check=False)
        waited = time.monotonic() - t0
    line = failure_line(result)
    assert f"the store {db} is locked" in line and "store.lock_wait" in line
    assert waited < 25  # store.lock_wait (1 s) and start-up, not SQLite's 30 s
    run_publish(site, "now")  # the holder is gone: the run goes through, nothing was lost
    assert subscribers_and_digests(db) == (["reader@example.com"], 1)


def test_an_immutable_database_is_one_line(site, run_publish):
    run_publish(site, "subscribers", "add", "reader@example.com")
    db = site / "publisher.db"
    with immutable(db):
        line = failure_line(run_publish(site, "now", check=False))
        assert f"the store {db} is read-only" in line
        line = failure_line(run_publish(site, "subscribers", "add", "other@example.com", check=False))
        assert "read-only" in line
    run_publish(site, "now")
    assert subscribers_and_digests(db) == (["reader@example.com"], 1)


@pytest.mark.slow
def test_a_damaged_page_is_one_line_for_every_command(site, run_publish):
    run_publish(site, "subscribers", "add", "reader@example.com")
    run_publish(site, "now")
    db = site / "publisher.db"
    damage_table(db, "articles")
    for args in (("now",), ("now", "--dry-run"), ("feeds",), ("status",)):
        line = failure_line(run_publish(site, *args, check=False))
        assert f"the store {db} is damaged" in line and ".recover" in line, args


@pytest.mark.slow
def test_a_zero_length_database_is_refused_not_a_new_empty_site(site, run_publish):
    db = site / "publisher.db"
    db.write_bytes(b"")
    for args in (("now",), ("now", "--dry-run"), ("subscribers", "list"), ("status",)):
        line = failure_line(run_publish(site, *args, check=False))
        assert f"the store {db} is an empty file (0 bytes)" in line, args
    assert db.stat().st_size == 0  # no new schema, no new signing secret
    assert not (site / "publisher.db-wal").exists()


def test_serve_and_run_refuse_a_zero_length_database_in_one_line(site, run_publish):
    (site / "publisher.db").write_bytes(b"")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for args in (("serve", "--port", str(port)), ("serve", "--scheduler", "--port", str(port)), ("run",)):
        line = failure_line(run_publish(site, *args, check=False))
        assert "is an empty file (0 bytes)" in line, args


def test_a_disk_that_fills_mid_run_is_one_line_and_keeps_what_was_stored(site, run_publish, tmp_path):
    many = tmp_path / "many"
    many.mkdir()
    paragraph = "Seoul reporters filed another long paragraph of news for the morning digest. " * 40
    for i in range(400):
        (many / f"story-{i:03}.txt").write_text(
            f"Story number {i}\nPublished: 2025-05-26T09:00:00+09:00\n\n{paragraph}\n{i}\n", encoding="utf-8"
        )
    with tmpfs(site / "disk", "1m") as disk:
        set_store(site, f'url = "sqlite:///{disk}/publisher.db"\n')
        run_publish(site, "subscribers", "add", "reader@example.com")
        run_publish(site, "now")
        before = subscribers_and_digests(disk / "publisher.db")
        cfg = site / "config.toml"
        cfg.write_text(
            cfg.read_text(encoding="utf-8").replace(
                "[store]", f'[[sources]]\ntype = "directory"\npath = "{many}"\n\n[store]'
            ),
            encoding="utf-8",
        )
        line = failure_line(run_publish(site, "now", check=False))
        assert f"the disk holding the store {disk}/publisher.db is full" in line
        assert subscribers_and_digests(disk / "publisher.db") == before
        resize(disk, "64m")
        run_publish(site, "now")
        emails, digests = subscribers_and_digests(disk / "publisher.db")
        assert emails == ["reader@example.com"] and digests == 2


def test_a_full_output_folder_is_one_line_and_the_digest_still_goes_out(site, run_publish):
    run_publish(site, "subscribers", "add", "reader@example.com")
    with tmpfs(site / "public", "64k") as public:
        fill(public)
        line = failure_line(run_publish(site, "now", check=False))
        assert f"cannot write the web edition in {public}" in line and "No space left on device" in line
        assert len(list((site / "outbox" / "new").iterdir())) == 1  # mail does not wait for pages
        resize(public, "16m")
        run_publish(site, "now")
        assert (public / "index.html").is_file()
    assert len(list((site / "outbox" / "new").iterdir())) == 1  # and is never sent twice
