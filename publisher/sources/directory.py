"""A folder of article files: the export format (``.txt``) and Markdown (``.md``).

The folder is walked once with ``os.scandir``; hidden files and folders (a leading
dot: ``.git``, editor swap files) are ignored and symbolic links to folders are not
followed. Files whose size and modification time match what the store recorded are
not opened again, so a second collect of a large tree costs one ``stat`` per file.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from zoneinfo import ZoneInfo

from publisher.config import SourceConfig
from publisher.errors import ParseError, SourceError
from publisher.models import Article
from publisher.sources import Entry, KnownState, Skipped, source_name
from publisher.sources.decode import decode

log = logging.getLogger(__name__)

Reader = Callable[..., tuple[Article, list[str]]]
MARKDOWN = (".md", ".markdown")  # else the export format


def _reader(suffix: str) -> Reader:
    """The parser of a file's format, imported when a file needs one (a collect that
    finds every file unchanged imports neither: Markdown's takes ~25 ms)."""
    if suffix.lower() in MARKDOWN:
        from publisher.sources.markdown import parse_markdown

        return parse_markdown
    from publisher.sources.export import parse_export

    return parse_export


@dataclass(frozen=True)
class ReadResult:
    """One file's bytes made into an article, or the reason they could not be."""

    article: Article | None
    warnings: tuple[str, ...] = ()
    reason: str | None = None


def read_article(
    data: bytes,
    *,
    suffix: str,
    article_id: str,
    source: str,
    tz: ZoneInfo,
    max_bytes: int = 2 * 1024 * 1024,
    category: str = "",
) -> ReadResult:
    """Decode and parse one article file. Never raises on bad content: the reason
    comes back instead."""
    if len(data) > max_bytes:
        return ReadResult(None, reason=f"too large ({len(data)} bytes, limit {max_bytes})")
    text, note = decode(data)
    if text is None:
        return ReadResult(None, reason=note or "cannot decode")
    try:
        article, warnings = _reader(suffix)(text, article_id=article_id, source=source, tz=tz)
    except ParseError as exc:
        return ReadResult(None, reason=str(exc))
    if category and not article.categories:
        article = replace(article, categories=(category,))
    return ReadResult(article, tuple([note] if note else []) + tuple(warnings))


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A glob over relative POSIX paths: ``*`` and ``?`` stay within one folder name,
    ``**/`` matches any number of folders (none included), ``[...]`` is a class."""
    out = []
    segments = pattern.strip("/").split("/")
    for i, seg in enumerate(segments):
        last = i == len(segments) - 1
        if seg == "**":
            out.append(".*" if last else "(?:[^/]+/)*")
            continue
        j = 0
        while j < len(seg):
            c = seg[j]
            if c == "*":
                out.append("[^/]*")
            elif c == "?":
                out.append("[^/]")
            elif c == "[" and (k := seg.find("]", j + 2)) != -1:
                body = seg[j + 1 : k]
                body = "^" + body[1:] if body.startswith("!") else body
                out.append("[" + body.replace("\\", "\\\\") + "]")
                j = k
            else:
                out.append(re.escape(c))
            j += 1
        if not last:
            out.append("/")
    return re.compile("".join(out) + r"\Z")


class DirectorySource:
    withdraws_missing = True

    def __init__(self, cfg: SourceConfig, tz: ZoneInfo, state: dict[str, str] | None = None) -> None:
        assert cfg.path is not None
        self.cfg = cfg
        self.root = cfg.path
        self.tz = tz
        self.name = source_name(cfg)
        self.state: dict[str, str] = {}
        self._pattern = re.compile("|".join(f"(?:{glob_regex(p).pattern})" for p in cfg.pattern))

    def files(self) -> Iterator[tuple[str, os.DirEntry[str]]]:
        """(relative POSIX path, directory entry) of every matching file, sorted."""
        if not self.root.is_dir():
            raise SourceError(f"source folder {self.root} does not exist")
        pending = [("", str(self.root))]
        while pending:
            prefix, folder = pending.pop()
            try:
                with os.scandir(folder) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError as exc:
                if not prefix:
                    raise SourceError(f"cannot read source folder {self.root}: {exc.strerror}") from None
                continue  # an unreadable subfolder: its files are reported missing below
            subfolders = []
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                rel = prefix + entry.name
                try:
                    if entry.is_dir(follow_symlinks=False):
                        subfolders.append((rel + "/", entry.path))
                    elif entry.is_file() and self._pattern.match(rel):
                        yield rel, entry
                except OSError:
                    continue
            pending.extend(reversed(subfolders))

    def scan(self, known: dict[str, KnownState]) -> Iterator[Entry | Skipped]:
        for rel, entry in self.files():
            article_id = f"{self.name}/{rel}"
            try:
                st = entry.stat()
            except OSError as exc:
                yield Skipped(entry.path, f"cannot read: {exc.strerror}", article_id)
                continue
            state = known.get(article_id)
            if (
                state is not None
                and not state.withdrawn
                and (state.size, state.mtime_ns) == (st.st_size, st.st_mtime_ns)
            ):
                yield Entry(article_id, None, st.st_size, st.st_mtime_ns)
                continue
            yield self._read(Path(entry.path), article_id, st)

    def _read(self, path: Path, article_id: str, st: os.stat_result) -> Entry | Skipped:
        limit = self.cfg.max_article_bytes
        if st.st_size > limit:
            return Skipped(str(path), f"too large ({st.st_size} bytes, limit {limit})", article_id)
        try:
            with open(path, "rb") as fh:
                data = fh.read(limit + 1)
        except OSError as exc:
            return Skipped(str(path), f"cannot read: {exc.strerror}", article_id)
        try:
            result = read_article(
                data,
                suffix=path.suffix,
                article_id=article_id,
                source=self.name,
                tz=self.tz,
                max_bytes=limit,
                category=self.cfg.category,
            )
        except Exception as exc:  # a parser bug must cost one file, not the run
            log.exception("%s: unexpected error while parsing", path)
            return Skipped(str(path), f"could not be parsed ({type(exc).__name__}: {exc})", article_id)
        if result.article is None:
            return Skipped(str(path), result.reason or "unusable", article_id)
        return Entry(article_id, result.article, st.st_size, st.st_mtime_ns, result.warnings)
