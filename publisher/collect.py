"""Collect: read every source and bring the store up to date.

Each article is classified new, updated or unchanged by its content hash under its
stable id; files that cannot be used are skipped with a warning naming them (an
article already stored from such a file keeps its last good version), and articles
whose file disappeared are withdrawn. An article dated in the future is stored and
held back (embargoed) until its time. A failing source is reported and the others
are still collected.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from publisher.config import Config
from publisher.errors import PublisherError, StoreError
from publisher.links import Links
from publisher.models import Change, Saving
from publisher.sources import Entry, Skipped, open_source, source_name
from publisher.store import Store

log = logging.getLogger(__name__)

BATCH = 500  # articles saved per transaction


@dataclass
class CollectReport:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    withdrawn: int = 0
    embargoed: int = 0  # stored in this run with a publication time still to come
    warnings: list[str] = field(default_factory=list)
    failed_sources: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.new or self.updated or self.withdrawn)

    def count(self, change: Change) -> None:
        if change is Change.NEW:
            self.new += 1
        elif change is Change.UPDATED:
            self.updated += 1
        else:
            self.unchanged += 1


def collect(
    config: Config, store: Store, now: datetime, progress: Callable[[int], None] | None = None
) -> CollectReport:
    """Bring the store up to date with every source; ``progress(n)`` is told how many
    files or entries were read so far (every 100, and at the end of each source)."""
    report = CollectReport()
    read = 0
    mint = Links(config.site.base_url).mint_guid
    store.articles.mint_missing_feed_ids(mint)
    dateless = 0  # dateless articles read so far: their order among this run's first-seen times
    for cfg in config.sources:
        name = source_name(cfg)
        try:
            source = open_source(cfg, config.tz, store.sources.get(name).state)
            known = store.articles.file_states(source.name)
            seen: list[str] = []
            pending: list[tuple[Entry, int]] = []
            for event in source.scan(known):
                read += 1
                if progress is not None and read % 100 == 0:
                    progress(read)
                if isinstance(event, Skipped):
                    report.skipped += 1
                    if event.id is not None:
                        seen.append(event.id)
                    _warn(report, f"{event.where}: skipped: {event.reason}")
                    continue
                seen.append(event.id)
                for warning in event.warnings:
                    _warn(report, f"{event.id}: {warning}")
                if event.article is None:
                    report.unchanged += 1
                    continue
                pending.append((event, dateless))
                if event.article.published is None:
                    dateless += 1
                if len(pending) >= BATCH:
                    _save(store, pending, now, report, mint)
            _save(store, pending, now, report, mint)
            if source.withdraws_missing:
                present = set(seen)
                missing = [i for i, state in known.items() if not state.withdrawn and i not in present]
                for gone in store.articles.withdraw(missing, now):
                    report.withdrawn += 1
                    log.info("%s: withdrawn (its source no longer has it)", gone)
            store.sources.succeeded(name, source.state, now)
            if progress is not None:
                progress(read)
        except StoreError:
            raise  # the store's trouble, not the source's: the run stops
        except (OSError, PublisherError) as exc:
            where = cfg.url or str(cfg.path)
            report.failed_sources.append(where)
            _warn(report, f"{where}: source failed: {exc}")
            store.sources.failed(name, str(exc), now)
    return report


def _save(
    store: Store,
    pending: list[tuple[Entry, int]],
    now: datetime,
    report: CollectReport,
    mint: Callable[[str], str],
) -> None:
    """Store the articles read so far, in one transaction; empty ``pending``."""
    if not pending:
        return
    batch = [Saving(e.article, e.file_size, e.file_mtime_ns, order) for e, order in pending if e.article]
    saved = store.articles.save_many(batch, now, mint)
    for (entry, _), outcome in zip(pending, saved, strict=True):
        report.count(outcome)
        published = entry.article.published if entry.article else None
        if outcome is not Change.UNCHANGED and published is not None and published > now:
            report.embargoed += 1
            log.info("%s: embargoed until %s", entry.id, published.isoformat())
    pending.clear()


def _warn(report: CollectReport, message: str) -> None:
    report.warnings.append(message)
    log.warning(message)
