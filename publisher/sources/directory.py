"""A folder of article files: the export format (``.txt``) and Markdown (``.md``).

Files whose size and modification time match what the store recorded are not read
again, so a second collect of a large tree costs one ``stat`` per file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

from publisher.config import SourceConfig
from publisher.models import Article
from publisher.sources import Entry, KnownState, Skipped
from publisher.sources.decode import decode
from publisher.sources.export import ParseError, parse_export
from publisher.sources.markdown import parse_markdown

Reader = Callable[..., tuple[Article, list[str]]]
READERS: dict[str, Reader] = {".txt": parse_export, ".md": parse_markdown, ".markdown": parse_markdown}


class DirectorySource:
    def __init__(self, cfg: SourceConfig, tz: ZoneInfo) -> None:
        assert cfg.path is not None
        self.cfg = cfg
        self.root = cfg.path
        self.tz = tz
        self.name = cfg.name or cfg.path.name

    def files(self) -> list[Path]:
        if not self.root.is_dir():
            raise FileNotFoundError(f"source folder {self.root} does not exist")
        found: set[Path] = set()
        for pattern in self.cfg.pattern:
            found.update(p for p in self.root.glob(pattern) if p.is_file())
        return sorted(found)

    def scan(self, known: dict[str, KnownState]) -> Iterator[Entry | Skipped]:
        for path in self.files():
            rel = path.relative_to(self.root).as_posix()
            article_id = f"{self.name}/{rel}"
            try:
                st = path.stat()
            except OSError as exc:
                yield Skipped(str(path), f"cannot read: {exc.strerror}")
                continue
            state = known.get(article_id)
            if (
                state is not None
                and not state.withdrawn
                and (state.size, state.mtime_ns) == (st.st_size, st.st_mtime_ns)
            ):
                yield Entry(article_id, None, st.st_size, st.st_mtime_ns)
                continue
            yield self._read(path, article_id, st)

    def _read(self, path: Path, article_id: str, st: os.stat_result) -> Entry | Skipped:
        reader = READERS.get(path.suffix.lower(), parse_export)
        if st.st_size > self.cfg.max_article_bytes:
            return Skipped(str(path), f"too large ({st.st_size} bytes, limit {self.cfg.max_article_bytes})")
        try:
            data = path.read_bytes()
        except OSError as exc:
            return Skipped(str(path), f"cannot read: {exc.strerror}")
        text, problem = decode(data)
        if text is None:
            return Skipped(str(path), problem or "cannot decode")
        try:
            article, warnings = reader(text, article_id=article_id, source=self.name, tz=self.tz)
        except ParseError as exc:
            return Skipped(str(path), str(exc))
        if self.cfg.category and not article.categories:
            from dataclasses import replace

            article = replace(article, categories=(self.cfg.category,))
        if problem:
            warnings = [problem, *warnings]
        return Entry(article_id, article, st.st_size, st.st_mtime_ns, tuple(warnings))
