"""The web edition under faults: a hostile or broken manifest never removes a file
outside output.dir; a read-only output folder is one line, and the digest is
delivered anyway (mail never waits for pages)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from publisher import output
from tests.faults import failure_line, immutable


def complete_run(root: Path) -> output.Writer:
    with output.Writer(root, complete=True) as writer:
        writer.write("index.html", "<p>home</p>")
    return writer


@pytest.mark.parametrize(
    "entry", ["../victim.txt", "ABSOLUTE", "articles/../../victim.txt", "a/./../../victim.txt"]
)
def test_a_manifest_naming_outside_paths_is_ignored_and_removes_nothing(tmp_path, caplog, entry):
    root = tmp_path / "public"
    root.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (root / "articles").mkdir()
    (root / "old.html").write_text("stale")
    name = str(victim) if entry == "ABSOLUTE" else entry
    (root / output.MANIFEST).write_text(json.dumps({name: ["", 0], "old.html": ["", 0]}))
    writer = complete_run(root)
    assert victim.read_text() == "keep me"
    assert writer.removed == []  # the whole manifest is distrusted, not just the bad line
    assert any("ignored" in r.getMessage() and output.MANIFEST in r.getMessage() for r in caplog.records)
    assert json.loads((root / output.MANIFEST).read_text())["files"] == {"index.html": ["", 0]}


def test_a_manifest_path_through_a_symlinked_folder_removes_nothing_outside(tmp_path, caplog):
    root, outside = tmp_path / "public", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "victim.txt").write_text("keep me")
    (root / "link").symlink_to(outside)
    (root / output.MANIFEST).write_text(json.dumps({"link/victim.txt": ["", 0]}))
    complete_run(root)
    assert (outside / "victim.txt").read_text() == "keep me"
    assert any("not removed" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"a.html": "x"}', '{"a.html": [1]}', "\udcff"])
def test_a_manifest_that_does_not_parse_is_ignored_with_a_warning(tmp_path, caplog, text):
    root = tmp_path / "public"
    root.mkdir()
    (root / output.MANIFEST).write_bytes(text.encode("utf-8", "surrogateescape"))
    (root / "a.html").write_text("kept")
    complete_run(root)
    assert (root / "a.html").read_text() == "kept"
    assert (root / "index.html").is_file()
    assert any("ignored" in r.getMessage() for r in caplog.records)


def test_a_good_manifest_still_removes_a_withdrawn_page(tmp_path):
    root = tmp_path / "public"
    (root / "articles" / "gone").mkdir(parents=True)
    (root / "articles" / "gone" / "index.html").write_text("withdrawn")
    (root / output.MANIFEST).write_text(json.dumps({"articles/gone/index.html": ["k", 9]}))
    writer = complete_run(root)
    assert writer.removed == ["articles/gone/index.html"]
    assert not (root / "articles" / "gone" / "index.html").exists()


def test_publish_now_with_a_hostile_manifest_keeps_config_toml(site, run_publish):
    run_publish(site, "now", "--no-email")
    manifest = site / "public" / output.MANIFEST
    entries = json.loads(manifest.read_text())
    entries["files"].update({"../config.toml": ["", 0], "articles/../../seeds/../config.toml": ["", 0]})
    manifest.write_text(json.dumps(entries))
    result = run_publish(site, "now", "--no-email")
    assert (site / "config.toml").is_file()
    assert "ignored" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_a_read_only_output_folder_is_one_line_and_the_digest_still_goes_out(site, run_publish):
    run_publish(site, "now", "--no-email")
    run_publish(site, "subscribers", "add", "reader@example.com")
    public = site / "public"
    with immutable(public):
        line = failure_line(run_publish(site, "now", check=False))
        assert f"cannot write the web edition in {public}" in line and "make it writable" in line
        assert len(list((site / "outbox" / "new").iterdir())) == 1
        line = failure_line(run_publish(site, "feeds", check=False))
        assert f"cannot write the web edition in {public}" in line
    with sqlite3.connect(site / "publisher.db") as conn:
        assert conn.execute("SELECT status FROM deliveries").fetchall() == [("sent",)]
    conn.close()
    run_publish(site, "now")  # writable again: the pages catch up, the mail is not sent twice
    assert len(list((site / "outbox" / "new").iterdir())) == 1
    assert list((public / "digests").iterdir())
