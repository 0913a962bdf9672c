"""The folder walk: which files a directory source reads, and what it leaves alone."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from publisher.collect import collect
from publisher.config import from_dict
from publisher.sources.directory import glob_regex
from publisher.store import Store

NOW = datetime(2025, 6, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("pattern", "matches", "misses"),
    [
        ("**/*.txt", ["a.txt", "x/a.txt", "x/y/z.txt"], ["a.md", "a.txt.bak", "x/a.txtx"]),
        ("*.md", ["a.md"], ["x/a.md", "a.txt"]),
        ("news/**/*.md", ["news/a.md", "news/2025/05/a.md"], ["a.md", "other/news/a.md"]),
        ("202?/[0-9]*.txt", ["2025/1.txt", "2024/9-x.txt"], ["2025/a.txt", "20255/1.txt"]),
        ("[!_]*.txt", ["a.txt"], ["_draft.txt"]),
    ],
)
def test_glob_patterns(pattern, matches, misses):
    rx = glob_regex(pattern)
    for path in matches:
        assert rx.match(path), (pattern, path)
    for path in misses:
        assert not rx.match(path), (pattern, path)


def write(path: Path, title: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{title}\nPublished: 2025-05-30 10:00\nBody.\n", encoding="utf-8")


def test_hidden_files_links_and_patterns(tmp_path):
    root = tmp_path / "articles"
    write(root / "a.txt", "Root story")
    write(root / "2025" / "05" / "b.txt", "Deep story")
    write(root / ".git" / "c.txt", "Inside .git")
    write(root / ".d.txt", "Hidden file")
    write(root / "drafts" / "e.txt", "A draft")
    (root / "loop").symlink_to(root, target_is_directory=True)  # must not be walked forever
    (root / "dangling.txt").symlink_to(root / "nowhere.txt")
    config = from_dict(
        {
            "sources": [
                {"type": "directory", "path": str(root), "name": "s", "pattern": ["*.txt", "2025/**/*.txt"]}
            ]
        },
        tmp_path / "config.toml",
    )
    store = Store.open(f"sqlite:///{tmp_path / 'db'}")
    report = collect(config, store, NOW)
    assert report.failed_sources == []
    assert sorted(a.id for a in store.articles.published(NOW)) == ["s/2025/05/b.txt", "s/a.txt"]
    store.close()


def test_a_missing_folder_fails_that_source_only(tmp_path):
    write(tmp_path / "ok" / "a.txt", "Fine")
    config = from_dict(
        {
            "sources": [
                {"type": "directory", "path": str(tmp_path / "gone")},
                {"type": "directory", "path": str(tmp_path / "ok")},
            ]
        },
        tmp_path / "config.toml",
    )
    store = Store.open(f"sqlite:///{tmp_path / 'db'}")
    report = collect(config, store, NOW)
    assert report.new == 1
    assert report.failed_sources == [str(tmp_path / "gone")]
    assert report.warnings == [
        f"{tmp_path / 'gone'}: source failed: source folder {tmp_path / 'gone'} does not exist"
    ]
    store.close()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_an_unreadable_file_is_skipped_with_its_reason(tmp_path):
    write(tmp_path / "s" / "secret.txt", "Secret")
    (tmp_path / "s" / "secret.txt").chmod(0)
    config = from_dict({"sources": [{"type": "directory", "path": str(tmp_path / "s")}]}, tmp_path / "c.toml")
    store = Store.open(f"sqlite:///{tmp_path / 'db'}")
    report = collect(config, store, NOW)
    assert report.skipped == 1 and "cannot read: Permission denied" in report.warnings[0]
    store.close()
