"""The subscriber list through the real command: add, remove, import, export, list."""

from __future__ import annotations

import csv
import io


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


def test_a_large_import_counts_every_row_once(site, run_publish):
    lines = ["email,name"] + [f"reader{i}@example.com,Reader {i}" for i in range(20_000)]
    (site / "big.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    run_publish(site, "subscribers", "add", "reader7@example.com")
    result = run_publish(site, "subscribers", "import", str(site / "big.csv"))
    assert "19999 added, 0 reactivated, 1 already subscribed, 0 rejected" in result.stdout
    status = run_publish(site, "status").stdout
    assert "20000 active" in status


def test_addresses_are_kept_in_ascii_every_server_takes():
    import pytest

    from publisher.audience import normalise
    from publisher.errors import UsageError

    assert normalise(" Reader@Bücher.Example ") == "reader@xn--bcher-kva.example"
    with pytest.raises(UsageError, match="用户@example.com"):
        normalise("用户@example.com")
