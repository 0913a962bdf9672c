"""The output writer: atomic, confined, lazy (unchanged files untouched)."""

from __future__ import annotations

from pathlib import Path

import pytest

from publisher.output import OutputError, Writer


def test_unchanged_files_are_not_touched_and_changed_ones_replaced(tmp_path: Path) -> None:
    with Writer(tmp_path) as w:
        w.write("a.xml", b"one")
        w.write("sub/b.html", "two")
    mtime = (tmp_path / "a.xml").stat().st_mtime_ns
    inode = (tmp_path / "a.xml").stat().st_ino
    with Writer(tmp_path) as w:
        assert w.write("a.xml", b"one") is False
        assert w.write("sub/b.html", "two!") is True
    assert (w.written, w.unchanged) == (["sub/b.html"], ["a.xml"])
    assert (tmp_path / "a.xml").stat().st_mtime_ns == mtime and (tmp_path / "a.xml").stat().st_ino == inode
    assert (tmp_path / "sub/b.html").read_text() == "two!"
    assert [p.name for p in tmp_path.rglob("*.tmp")] == []


def test_a_longer_or_shorter_file_counts_as_changed(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"abc")
    with Writer(tmp_path) as w:
        assert w.write("f", b"abcd") is True
    with Writer(tmp_path) as w:
        assert w.write("f", b"ab") is True
    assert (tmp_path / "f").read_bytes() == b"ab"


def test_nothing_is_replaced_until_commit_and_an_error_leaves_the_old_files(tmp_path: Path) -> None:
    (tmp_path / "feed.xml").write_bytes(b"old")
    with pytest.raises(RuntimeError), Writer(tmp_path) as w:
        w.write("feed.xml", b"new")
        assert (tmp_path / "feed.xml").read_bytes() == b"old"  # staged, not yet visible
        raise RuntimeError("build failed half way")
    assert (tmp_path / "feed.xml").read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["feed.xml"]


def test_paths_stay_inside_and_are_written_once(tmp_path: Path) -> None:
    w = Writer(tmp_path / "out")
    with pytest.raises(OutputError):
        w.write("../escape.html", "x")
    w.write("a.html", "x")
    with pytest.raises(OutputError):
        w.write("./a.html", "y")
    w.abort()


def test_many_files_are_committed_together(tmp_path: Path) -> None:
    with Writer(tmp_path) as w:
        for i in range(50):
            w.write(f"p/{i}.html", f"page {i}")
    assert len(list((tmp_path / "p").iterdir())) == 50
    assert (tmp_path / "p/49.html").read_text() == "page 49"


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    with Writer(tmp_path / "out", dry_run=True) as w:
        assert w.write("a.html", "x") is True
    assert not (tmp_path / "out").exists()
