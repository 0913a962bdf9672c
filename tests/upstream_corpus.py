"""The upstream corpus (tests/fixtures/upstream) served over HTTP on 127.0.0.1, each
file with the Content-Type a real server might send (some of them wrong)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from publisher.config import Config, from_dict
from tests.feed_server import Upstream, answer

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
CORPUS = Path(__file__).resolve().parent / "fixtures" / "upstream"

# fixture -> the Content-Type its server sends
SERVED = {
    "authors.atom": "application/atom+xml",
    "authors.rss": "application/rss+xml",
    "missing.rss": "application/rss+xml",
    "titleless.rss": "application/rss+xml",
    "controls.rss": "application/rss+xml",
    "relative.atom": "application/atom+xml",
    "euc-kr.rss": "text/html; charset=iso-8859-1",
    "cp949-undeclared.rss": "text/xml",
    "windows-1252.rss": "application/rss+xml",
    "jsonfeed-1.0.json": "application/json",
    "jsonfeed-1.1.json": "application/feed+json",
}


@contextmanager
def serve_corpus() -> Iterator[Upstream]:
    server = Upstream()
    for name, content_type in SERVED.items():
        server.routes[f"/{name}"] = answer(200, (CORPUS / name).read_bytes(), Content_Type=content_type)
    try:
        yield server
    finally:
        server.close()


def corpus_config(tmp: Path, upstream: Upstream, base_url: str = "http://127.0.0.1:8000/") -> Config:
    """A site whose sources are every feed of the corpus."""
    sources = [{"type": "feed", "url": upstream.url(f"/{n}"), "name": n} for n in SERVED]
    site = {"timezone": "Asia/Seoul", "base_url": base_url, "title": "Corpus Daily"}
    return from_dict({"site": site, "sources": sources, "feeds": {"items": 100}}, tmp / "config.toml")
