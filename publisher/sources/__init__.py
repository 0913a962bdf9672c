"""Sources: where articles come from.

``open_source(source_config, tz, state)`` picks the class registered in ``KINDS`` for
the source's ``type``; adding a kind of source is adding a module and one line there.
A source yields ``Entry`` (an article, or the id of one known to be unchanged) and
``Skipped`` (a file or entry that could not be used, with the reason) events; it never
touches the store. What it must remember until the next run (a feed's ETag) it takes
in as ``state`` and leaves, updated, in its ``state`` attribute once ``scan`` is done.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol
from zoneinfo import ZoneInfo

from publisher.config import SourceConfig
from publisher.errors import SourceError
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
    id: str | None = None  # the article id the file would have had; its stored version stays


class KnownState(Protocol):
    size: int | None
    mtime_ns: int | None
    withdrawn: bool


class Source(Protocol):
    name: str
    # True: an article the source no longer holds is withdrawn (a deleted file).
    # False: the source only shows recent items (a feed), absence means nothing.
    withdraws_missing: bool
    state: dict[str, str]

    def scan(self, known: dict[str, KnownState]) -> Iterator[Entry | Skipped]:
        """Every article the source holds now; ``known`` lets it skip unchanged ones."""
        ...


def _directory() -> Callable[..., Source]:
    from publisher.sources.directory import DirectorySource

    return DirectorySource


def _feed() -> Callable[..., Source]:
    from publisher.sources.feed import FeedSource

    return FeedSource


KINDS: dict[str, Callable[[], Callable[..., Source]]] = {"directory": _directory, "feed": _feed}


def source_name(cfg: SourceConfig) -> str:
    """The name a source's article ids and stored state go by."""
    if cfg.name:
        return cfg.name
    if cfg.type == "feed":
        return cfg.url
    assert cfg.path is not None
    return cfg.path.name


def open_source(cfg: SourceConfig, tz: ZoneInfo, state: dict[str, str] | None = None) -> Source:
    try:
        kind = KINDS[cfg.type]
    except KeyError:
        raise SourceError(f'source type "{cfg.type}" is not supported') from None
    return kind()(cfg, tz, dict(state or {}))
