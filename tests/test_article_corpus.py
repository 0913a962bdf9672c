"""The fixture corpus (tests/fixtures/articles): every awkward file a newsroom drops
into a folder, collected for real, with the exact outcome expected of each."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from publisher.collect import collect
from publisher.config import from_dict
from publisher.store import Store
from publisher.store.schema import articles, digest_articles
from tests.outcomes import outcomes

CORPUS = Path(__file__).resolve().parent / "fixtures" / "articles"
NOW = datetime(2025, 6, 1, 0, 0, tzinfo=UTC)

# file -> why it is skipped (the warning names the file and says this)
SKIPPED = {
    "empty.txt": "empty file",
    "blank_lines.txt": "empty file",
    "binary.txt": "binary file (control bytes such as NUL throughout)",
    "too_large.txt": "too large (5439 bytes, limit 4096)",
    "no_title.txt": "no title (the first line is a date)",
    "no_title.md": "no title in the front matter",
    "no_front_matter.md": "no front matter (the file must start with a +++ line)",
    "bad_toml.md": "front matter is not valid TOML: Unterminated string (at end of document)",
}

COLLECTED = outcomes("articles")  # file -> its title, date, authors and body

WARNED = {
    "bad_date.txt": "unreadable Published date 'the day after tomorrow'",
    "no_date.txt": "no Published: date",
    "cp1252.txt": "decoded as cp1252 (not UTF-8)",
    "cp949.txt": "decoded as cp949 (not UTF-8)",
    "utf16.txt": "decoded as utf-16-le (not UTF-8)",
}


@pytest.fixture
def corpus(tmp_path: Path):
    folder = tmp_path / "articles"
    shutil.copytree(CORPUS, folder)
    config = from_dict(
        {
            "site": {"timezone": "Asia/Seoul"},
            "sources": [
                {"type": "directory", "path": str(folder), "name": "fx", "max_article_bytes": 4096},
            ],
        },
        tmp_path / "config.toml",
    )
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    yield folder, config, store
    store.close()


def rows(store: Store) -> dict[str, object]:
    with store.engine.connect() as conn:
        return {r.id.removeprefix("fx/"): r for r in conn.execute(select(articles))}


def test_every_awkward_file_has_its_exact_outcome(corpus):
    folder, config, store = corpus
    report = collect(config, store, NOW)
    assert report.failed_sources == []
    assert (report.new, report.skipped, report.embargoed) == (len(COLLECTED), len(SKIPPED), 2)
    expected_warnings = {f"{folder / name}: skipped: {reason}" for name, reason in SKIPPED.items()}
    expected_warnings |= {f"fx/{name}: {text}" for name, text in WARNED.items()}
    assert set(report.warnings) == expected_warnings
    stored = rows(store)
    assert set(stored) == set(COLLECTED)  # hidden files, .rst and skipped files are not articles
    # dateless files: the time first seen, one second apart in the folder's order (distinct)
    dateless = sorted(name for name, want in COLLECTED.items() if want.published is None)
    first_seen = {name: NOW - timedelta(seconds=i) for i, name in enumerate(dateless)}
    assert first_seen == {"bad_date.txt": NOW, "no_date.txt": NOW - timedelta(seconds=1)}
    for name, want in COLLECTED.items():
        row = stored[name]
        assert row.title == want.title, name
        assert row.published == (want.published or first_seen[name]), name
        assert bool(row.date_missing) == (want.published is None), name
        assert [tuple(a) for a in json.loads(row.authors)] == want.authors, name
        assert row.body == want.body, name


def test_markdown_front_matter_fields(corpus):
    folder, config, store = corpus
    collect(config, store, NOW)
    updated = datetime.fromisoformat("2025-05-27T09:10:00+09:00")  # the export's Updated: line
    assert rows(store)["crlf.txt"].updated == updated
    row = rows(store)["unsafe.md"]
    assert json.loads(row.categories) == ["Culture", "Seoul"]
    assert row.summary == "A summary."
    assert row.url == "https://news.example.com/unsafe"
    assert row.image is None  # "javascript:alert(1)" is no image URL
    assert json.loads(rows(store)["future.md"].categories) == ["Economy"]


def test_embargoed_articles_wait_for_their_time(corpus):
    folder, config, store = corpus
    collect(config, store, NOW)
    visible = {a.id for a in store.articles.published(NOW)}
    assert "fx/future.txt" not in visible and "fx/future.md" not in visible
    assert "fx/future.txt" not in {a.id for a in store.articles.not_yet_in_digest(NOW)}
    later = datetime(2030, 1, 1, 0, 0, 1, tzinfo=UTC)
    assert "fx/future.txt" in {a.id for a in store.articles.published(later)}
    assert "fx/future.md" in {a.id for a in store.articles.not_yet_in_digest(later)}


def test_source_category_applies_where_the_file_has_none(corpus, tmp_path):
    folder, config, store = corpus
    config = from_dict(
        {"sources": [{"type": "directory", "path": str(folder), "name": "fx", "category": "National"}]},
        tmp_path / "config.toml",
    )
    collect(config, store, NOW)
    stored = rows(store)
    assert json.loads(stored["crlf.txt"].categories) == ["National"]
    assert json.loads(stored["unsafe.md"].categories) == ["Culture", "Seoul"]


def test_second_collect_reads_only_what_changed(corpus):
    folder, config, store = corpus
    collect(config, store, NOW)
    (folder / "bom.txt").write_bytes(
        "\ufeffStarts with a BOM\nPublished: May 28, 2025 2:30 PM\nEdited body.\n".encode()
    )
    report = collect(config, store, NOW + timedelta(hours=1))
    assert (report.new, report.updated, report.unchanged) == (0, 1, len(COLLECTED) - 1)
    assert report.skipped == len(SKIPPED)  # still broken, still reported
    row = rows(store)["bom.txt"]
    assert row.body == "<p>Edited body.</p>"
    assert row.updated == NOW + timedelta(hours=1)


def test_a_file_that_breaks_keeps_its_last_good_version(corpus):
    folder, config, store = corpus
    collect(config, store, NOW)
    (folder / "crlf.txt").write_bytes(b"")
    report = collect(config, store, NOW + timedelta(hours=1))
    assert f"{folder / 'crlf.txt'}: skipped: empty file" in report.warnings
    assert report.withdrawn == 0
    assert "fx/crlf.txt" in {a.id for a in store.articles.published(NOW + timedelta(hours=1))}


def test_a_deleted_file_withdraws_its_article_but_not_from_sent_digests(corpus):
    folder, config, store = corpus
    collect(config, store, NOW)
    from publisher.models import DigestItem

    sent = store.articles.published(NOW)
    store.ledger.create_digest(
        "2025-06-01",
        "s",
        "<p>h</p>",
        "t",
        [DigestItem(a.id, a.article.content_hash, True) for a in sent],
        NOW,
    )
    (folder / "bom.txt").unlink()
    report = collect(config, store, NOW + timedelta(hours=1))
    assert report.withdrawn == 1
    assert "fx/bom.txt" not in {a.id for a in store.articles.published(NOW + timedelta(hours=1))}
    [digest] = store.ledger.all_digests()
    with store.engine.connect() as conn:  # the digest still lists it
        listed = conn.execute(
            select(digest_articles.c.article_id).where(digest_articles.c.digest_id == digest.id)
        ).scalars()
        assert "fx/bom.txt" in set(listed)
    (folder / "bom.txt").write_bytes(b"Starts with a BOM\nPublished: May 28, 2025 2:30 PM\nBack.\n")
    report = collect(config, store, NOW + timedelta(hours=2))
    assert report.updated == 1  # the same id comes back, not a new article
    assert "fx/bom.txt" in {a.id for a in store.articles.published(NOW + timedelta(hours=2))}
