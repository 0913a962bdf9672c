"""Compiled templates kept between runs (publisher.render): a run renders what the
template says now, environments that compile differently never share an entry, and a
cache that cannot be written never fails a run."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from publisher import render


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The user's cache folder in tmp_path; each test starts with no cache chosen."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    render._bytecode_cache.cache_clear()
    yield tmp_path / "cache" / "publisher" / "templates"
    render._bytecode_cache.cache_clear()


def theme(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "templates"
    folder.mkdir(exist_ok=True)
    (folder / "page.html").write_text(text, encoding="utf-8")
    return folder


def test_a_template_edited_between_runs_renders_as_edited(tmp_path: Path, cache: Path) -> None:
    folder = theme(tmp_path, "<p>{{ word }} one</p>")
    assert render.environment(folder).get_template("page.html").render(word="a") == "<p>a one</p>"
    assert len(list(cache.iterdir())) == 1  # compiled once, kept
    stat = (folder / "page.html").stat()
    theme(tmp_path, "<p>{{ word }} two</p>")  # same size, same times: only its text changed
    os.utime(folder / "page.html", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert render.environment(folder).get_template("page.html").render(word="a") == "<p>a two</p>"


def test_environments_that_escape_differently_never_share_a_compiled_template(
    tmp_path: Path, cache: Path
) -> None:
    folder = theme(tmp_path, "{{ word }}")
    for _ in range(2):  # the second round from the cache
        assert render.environment(folder).get_template("page.html").render(word="<b>") == "&lt;b&gt;"
        assert (
            render.environment(folder, autoescape=False).get_template("page.html").render(word="<b>") == "<b>"
        )
        sandboxed = render.environment(folder, sandboxed=True).get_template("page.html")
        assert sandboxed.render(word="<b>") == "&lt;b&gt;"
    assert len(list(cache.iterdir())) == 3


def test_a_cache_that_cannot_be_written_leaves_rendering_as_it_was(tmp_path: Path, cache: Path) -> None:
    folder = theme(tmp_path, "<p>{{ word }}</p>")
    env = render.environment(folder)
    shutil.rmtree(cache)  # gone after it was chosen: writing an entry fails
    assert env.get_template("page.html").render(word="a") == "<p>a</p>"


def test_a_cache_folder_others_can_write_to_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared"
    (shared / "publisher" / "templates").mkdir(parents=True)
    (shared / "publisher" / "templates").chmod(0o777)
    monkeypatch.setenv("XDG_CACHE_HOME", str(shared))
    render._bytecode_cache.cache_clear()
    try:
        folder = theme(tmp_path, "<p>{{ word }}</p>")
        assert render.environment(folder).get_template("page.html").render(word="a") == "<p>a</p>"
        assert not list((shared / "publisher" / "templates").iterdir())
    finally:
        render._bytecode_cache.cache_clear()
