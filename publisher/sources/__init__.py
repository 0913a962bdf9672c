"""Sources: where articles come from.

``open_source(config, source_config)`` picks the class registered for the
source's ``type``; adding a kind of source is adding a module and one line in
``KINDS``. A source yields ``Entry`` (an article, or the id of one known to be
unchanged) and ``Skipped`` (a file or entry that could not be used, with the
reason) events; it never touches the store.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol
from zoneinfo import ZoneInfo

from publisher.config import SourceConfig
from publisher.models import Article


@dataclass(frozen=True)
class Entry:
    id: str
    article: Article | None  # None: unchanged since the last run, not read again
    file_size: int | None = None
    file_mtime_ns: int | None = None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Skipped:
    where: str  # file path or URL
    reason: str


class KnownState(Protocol):
    size: int | None
    mtime_ns: int | None
    withdrawn: bool


class Source(Protocol):
    name: str

    def scan(self, known: dict[str, KnownState]) -> Iterator[Entry | Skipped]:
        """Every article the source holds now; ``known`` lets it skip unchanged ones."""
        ...


def open_source(cfg: SourceConfig, tz: ZoneInfo) -> Source:
    from publisher.sources.directory import DirectorySource

    kinds: dict[str, type] = {"directory": DirectorySource}
    try:
        kind = kinds[cfg.type]
    except KeyError:
        raise NotImplementedError(f'source type "{cfg.type}" is not supported yet') from None
    return kind(cfg, tz)  # type: ignore[no-any-return]
