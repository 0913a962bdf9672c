"""The output writer: atomic, confined, lazy (unchanged files untouched)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from publisher import output
from publisher.errors import OutputError
from publisher.output import Lazy, Writer


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


def counting(calls: list[str], name: str, text: str) -> Lazy:
    def make() -> str:
        calls.append(name)
        return text

    return Lazy(f"key-{text}", make)


def test_a_lazy_file_with_a_known_key_is_neither_made_nor_read(tmp_path: Path) -> None:
    calls: list[str] = []
    with Writer(tmp_path) as w:
        w.write("a.html", counting(calls, "a", "A"))
        w.write("b.html", counting(calls, "b", "B"))
    assert calls == ["a", "b"] and (tmp_path / "a.html").read_text() == "A"
    with Writer(tmp_path) as w:
        w.write("a.html", counting(calls, "a", "A"))
        w.write("b.html", counting(calls, "b", "B"))
    assert calls == ["a", "b"] and w.unchanged == ["a.html", "b.html"]
    (tmp_path / "b.html").unlink()
    (tmp_path / "a.html").write_text("tampered, other size")
    with Writer(tmp_path) as w:
        w.write("a.html", counting(calls, "a", "A"))
        w.write("b.html", counting(calls, "b", "B"))
    assert calls == ["a", "b", "a", "b"] and sorted(w.written) == ["a.html", "b.html"]
    assert (tmp_path / "a.html").read_text() == "A" and (tmp_path / "b.html").read_text() == "B"


def test_a_new_key_with_the_same_bytes_leaves_the_file_alone(tmp_path: Path) -> None:
    with Writer(tmp_path) as w:
        w.write("a.html", Lazy("v1", lambda: "same"))
    mtime = (tmp_path / "a.html").stat().st_mtime_ns
    with Writer(tmp_path) as w:
        assert w.write("a.html", Lazy("v2", lambda: "same")) is False
    assert (tmp_path / "a.html").stat().st_mtime_ns == mtime


def test_a_complete_run_removes_what_it_no_longer_produces(tmp_path: Path) -> None:
    (tmp_path / "robots.txt").write_text("not ours")
    with Writer(tmp_path, complete=True) as w:
        w.write("articles/a.html", Lazy("a", lambda: "A"))
        w.write("articles/b.html", Lazy("b", lambda: "B"))
        w.write("categories/gone/rss.xml", "feed")
        w.write("index.html", "plain")
    with Writer(tmp_path, complete=True) as w:
        w.write("articles/a.html", Lazy("a", lambda: "A"))
        w.write("index.html", "plain")
    assert w.removed == ["articles/b.html", "categories/gone/rss.xml"] and w.written == []
    assert not (tmp_path / "articles/b.html").exists() and (tmp_path / "articles/a.html").exists()
    assert not (tmp_path / "categories/gone/rss.xml").exists()
    assert (tmp_path / "robots.txt").read_text() == "not ours"  # never written by us: never removed
    with Writer(tmp_path) as w:
        w.write("index.html", "plain")  # not a complete run: removes nothing
    assert w.removed == [] and (tmp_path / "articles/a.html").exists()
    with Writer(tmp_path, complete=True, dry_run=True) as w:
        w.write("index.html", "plain")
    assert w.removed == ["articles/a.html"] and (tmp_path / "articles/a.html").exists()


def test_a_new_folder_appears_whole_at_commit_and_not_at_all_on_an_error(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("old")
    with Writer(tmp_path) as w:
        w.write("index.html", "new")
        for i in range(5):
            w.write(f"articles/{i}.html", f"page {i}")
        w.write("categories/a/index.html", "A")
        assert not (tmp_path / "articles").exists() and not (tmp_path / "categories").exists()
    assert sorted(p.name for p in (tmp_path / "articles").iterdir()) == [f"{i}.html" for i in range(5)]
    assert (tmp_path / "categories/a/index.html").read_text() == "A"
    assert (tmp_path / "articles/3.html").stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["articles", "categories", "index.html"]
    with pytest.raises(RuntimeError), Writer(tmp_path) as w:
        w.write("digests/one.html", "D")
        w.write("articles/new.html", "N")
        raise RuntimeError("build failed half way")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["articles", "categories", "index.html"]
    assert not (tmp_path / "articles/new.html").exists()


def test_a_new_folder_made_meanwhile_by_someone_else_is_merged_into(tmp_path: Path) -> None:
    with Writer(tmp_path) as w:
        w.write("p/a.html", "A")
        (tmp_path / "p").mkdir()
        (tmp_path / "p/theirs.html").write_text("T")
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == ["a.html", "theirs.html"]
    assert [p.name for p in tmp_path.iterdir()] == ["p"]


def test_a_folder_that_links_outside_is_refused(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "out/escape").symlink_to(tmp_path / "elsewhere")
    w = Writer(tmp_path / "out")
    w.write("inside/a.html", "x")
    with pytest.raises(OutputError):
        w.write("escape/a.html", "x")
    w.commit()
    assert list((tmp_path / "elsewhere").iterdir()) == [] and (tmp_path / "out/inside/a.html").exists()


def test_a_complete_run_sweeps_the_temporaries_a_killed_run_left(tmp_path: Path) -> None:
    with Writer(tmp_path, complete=True) as w:
        w.write("articles/a.html", "A")
        w.write("index.html", "I")
    # what a run killed between staging and renaming leaves behind
    (tmp_path / "articles" / ".a.html.4242.tmp").write_text("half")
    (tmp_path / ".index.html.x1y2.tmp").write_text("half")
    stand_in = tmp_path / ".categories.0a1b2c3d.tmp"
    (stand_in / "news").mkdir(parents=True)
    (stand_in / "news" / "rss.xml").write_text("half")
    (tmp_path / ".well-known").mkdir()  # hidden but not ours: kept
    with Writer(tmp_path) as w:  # not a complete run: sweeps nothing
        w.write("index.html", "I")
    assert (tmp_path / ".index.html.x1y2.tmp").exists()
    with Writer(tmp_path, complete=True) as w:
        w.write("articles/a.html", "A")
        w.write("index.html", "I")
    left = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))
    assert [p for p in left if p != output.MANIFEST] == [
        ".well-known",
        "articles",
        "articles/a.html",
        "index.html",
    ]


def test_a_complete_run_names_its_content_version_and_reads_an_older_manifest(tmp_path: Path) -> None:
    page = Lazy("k1", lambda: "page")
    with Writer(tmp_path) as w:
        w.write("index.html", "I")
        w.write("a.html", page)
    manifest = tmp_path / output.MANIFEST
    files = json.loads(manifest.read_text())["files"]
    manifest.write_text(json.dumps(files))  # as a release before content versions wrote it
    assert output.built_version(tmp_path) is None
    assert output.stale(tmp_path, None, 0) is not None  # no version: not known to be current

    def never() -> str:
        raise AssertionError("a page the older manifest knows is made again")

    with Writer(tmp_path, complete=True, version=7) as w:
        w.write("index.html", "I")
        w.write("a.html", Lazy("k1", never))
    assert w.written == [] and output.built_version(tmp_path) == 7
    assert output.stale(tmp_path, 7, 7) is None and "content version 7" in str(output.stale(tmp_path, 7, 8))
    with Writer(tmp_path) as w:  # a partial write keeps the version of the last whole build
        w.write("b.html", Lazy("k2", lambda: "b"))
    assert output.built_version(tmp_path) == 7 and "b.html" in json.loads(manifest.read_text())["files"]
    (tmp_path / "index.html").unlink()
    assert output.built_version(tmp_path) is None and "no web edition" in str(output.stale(tmp_path, 7, 7))
