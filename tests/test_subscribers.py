"""The subscriber list through the real command: add, remove, import, export, list."""

from __future__ import annotations

import csv
import io

import pytest


def test_import_reports_bad_rows_by_line_and_keeps_the_good_ones(site, run_publish):
    run_publish(site, "subscribers", "add", "gone@example.com")
    run_publish(site, "subscribers", "remove", "gone@example.com")
    (site / "people.csv").write_text(
        "\ufeffEmail,Name\n"
        "Ann@Example.COM,Ann Lee\n"
        "not-an-address,Bad\n"
        "gone@example.com,Gone\n"
        "minji@example.kr,김민지\n"
        "ann@example.com,Ann again\n",
        encoding="utf-8",
    )
    result = run_publish(site, "subscribers", "import", str(site / "people.csv"))
    assert "2 added, 0 reactivated, 1 already subscribed, 2 rejected" in result.stdout
    assert "people.csv:3:" in result.stderr and "not-an-address" in result.stderr
    assert "people.csv:4:" in result.stderr and "--resubscribe" in result.stderr
    again = run_publish(site, "subscribers", "import", str(site / "people.csv"), "--resubscribe")
    assert "1 reactivated" in again.stdout

    rows = list(csv.DictReader(io.StringIO(run_publish(site, "subscribers", "export").stdout)))
    assert {(r["email"], r["name"], r["status"]) for r in rows} == {
        ("ann@example.com", "Ann Lee", "active"),
        ("minji@example.kr", "김민지", "active"),
        ("gone@example.com", "Gone", "active"),
    }
    listed = run_publish(site, "subscribers", "list", "--status", "active").stdout.splitlines()
    assert [line.split("\t")[0] for line in listed] == [
        "ann@example.com",
        "gone@example.com",
        "minji@example.kr",
    ]


def test_import_without_an_email_column_is_a_usage_error(site, run_publish):
    (site / "people.csv").write_text("address,name\nann@example.com,Ann\n", encoding="utf-8")
    result = run_publish(site, "subscribers", "import", str(site / "people.csv"), check=False)
    assert result.returncode == 2
    assert "people.csv" in result.stderr and "'email' column" in result.stderr


@pytest.mark.slow
def test_a_large_import_counts_every_row_once(site, run_publish):
    lines = ["email,name"] + [f"reader{i}@example.com,Reader {i}" for i in range(20_000)]
    (site / "big.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    run_publish(site, "subscribers", "add", "reader7@example.com")
    result = run_publish(site, "subscribers", "import", str(site / "big.csv"))
    assert "19999 added, 0 reactivated, 1 already subscribed, 0 rejected" in result.stdout
    status = run_publish(site, "status").stdout
    assert "20,000 active" in status


@pytest.mark.slow
def test_a_long_import_goes_in_batches_and_names_each_bad_line(site, run_publish):
    """20,000 rows (20 batches): a bad row in the middle, an address repeated 15,000 lines
    later (found in the store, not in memory), an unsubscribed address far down."""
    run_publish(site, "subscribers", "add", "gone@example.com")
    run_publish(site, "subscribers", "remove", "gone@example.com")
    lines = ["email,name"] + [f"reader{i}@example.com,Reader {i}" for i in range(20_000)]
    lines[10_001] = "reader10000@,Broken"  # line 10,002 of the file
    lines[15_001] = "Reader5@Example.com,Reader five again"
    lines[19_001] = "gone@example.com,Gone"
    (site / "big.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run_publish(site, "subscribers", "import", str(site / "big.csv"))
    assert result.stdout == "19997 added, 0 reactivated, 1 already subscribed, 2 rejected\n"
    problems = result.stderr.splitlines()
    assert [p.split(": ")[0] for p in problems] == [f"{site / 'big.csv'}:10002", f"{site / 'big.csv'}:19002"]
    assert "'reader10000@' is not a valid email address" in problems[0]
    assert "gone@example.com is unsubscribed" in problems[1] and "--resubscribe" in problems[1]
    rows = list(csv.DictReader(io.StringIO(run_publish(site, "subscribers", "export").stdout)))
    stored = {r["email"]: r["name"] for r in rows}
    assert len(stored) == 19_998 and "reader10000@example.com" not in stored
    assert stored["reader5@example.com"] == "Reader 5" and stored["reader19999@example.com"] == "Reader 19999"


def test_an_import_report_counts_every_problem_and_keeps_the_first(tmp_path):
    from publisher import audience
    from publisher.csvrows import KEPT_PROBLEMS
    from publisher.store import Store

    rows = [f"bad{i}" if i % 2 else f"good{i}@example.com" for i in range(2 * KEPT_PROBLEMS + 50)]
    store = Store.open(f"sqlite:///{tmp_path / 'p.db'}")
    try:
        told: list[str] = []
        report = audience.import_csv(
            store, "email\n" + "\n".join(rows), "in.csv", on_problem=told.append, batch=7
        )
        assert (report.added, report.rejected) == (len(rows) // 2, len(rows) // 2)
        assert len(told) == len(rows) // 2 and told[0].startswith("in.csv:3: 'bad1' is not a valid")
        assert told[-1].startswith(f"in.csv:{len(rows) + 1}: 'bad{len(rows) - 1}'")
        assert report.problems == told[:KEPT_PROBLEMS]
    finally:
        store.close()


def test_addresses_are_kept_in_ascii_every_server_takes():
    import pytest

    from publisher.audience import normalise
    from publisher.errors import UsageError

    assert normalise(" Reader@Bücher.Example ") == "reader@xn--bcher-kva.example"
    with pytest.raises(UsageError, match="用户@example.com"):
        normalise("用户@example.com")


def test_a_newsletters_members_are_read_page_by_page_of_addresses(tmp_path):
    """Pages of addresses that hold no member of the newsletter, or only some, are walked past."""
    from datetime import UTC, datetime

    from publisher.store import Store

    store = Store.open(f"sqlite:///{tmp_path / 'm.db'}")
    try:
        now = datetime.now(UTC)
        store.subscribers.add_many([(f"r{i:02}@example.com", f"R{i}") for i in range(20)], "active", now)
        ids = store.subscribers.ids(f"r{i:02}@example.com" for i in range(20))
        members = {f"r{i:02}@example.com" for i in (1, 2, 9, 17, 19)}  # none among r03..r08
        store.subscriptions.add_many({ids[e]: {"weekly": ["politics"]} for e in members}, "active", now)
        got = list(store.subscriptions.members("weekly", batch=3))
        assert [(p.email, s.status, s.sections) for p, s in got] == [
            (e, "active", ("politics",)) for e in sorted(members)
        ]
    finally:
        store.close()
