"""``publish suppressions``: add, list, remove, CSV import and export; entries are
checked and kept canonical (lower case, punycode domains)."""

from __future__ import annotations

from tests.conftest import publish


def test_add_list_remove_addresses_and_domains(site):
    added = publish(
        site, "suppressions", "add", "Reader@Example.COM", "@Spam.Example", "--detail", "asked by phone"
    )
    assert added.stdout.splitlines() == ["suppressed reader@example.com", "suppressed @spam.example"]
    again = publish(site, "suppressions", "add", "reader@example.com")
    assert again.stdout.strip() == "already suppressed: reader@example.com"
    lines = publish(site, "suppressions", "list").stdout.splitlines()
    assert [line.split("\t")[:2] for line in lines] == [
        ["@spam.example", "manual"],
        ["reader@example.com", "manual"],
    ]
    assert all(line.split("\t")[3] == "until removed" and line.endswith("asked by phone") for line in lines)
    assert publish(site, "suppressions", "remove", "@SPAM.example").stdout.strip() == "removed @spam.example"
    missing = publish(site, "suppressions", "remove", "@spam.example", check=False)
    assert (
        missing.returncode == 2
        and missing.stderr.strip() == "publish: @spam.example is not on the suppression list"
    )


def test_a_bad_entry_is_one_line_and_nothing_is_added(site):
    result = publish(site, "suppressions", "add", "ok@example.com", "not-an-address", check=False)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "'not-an-address' is not a valid email address" in result.stderr
    assert publish(site, "suppressions", "list").stdout == ""


def test_an_international_domain_is_kept_in_punycode(site):
    assert (
        publish(site, "suppressions", "add", "@한국.example").stdout.strip()
        == "suppressed @xn--3e0b707e.example"
    )


def test_csv_export_and_import_round_trip_with_bad_lines_reported(site, tmp_path):
    publish(site, "suppressions", "add", "a@example.com", "@example.org")
    exported = publish(site, "suppressions", "export").stdout
    assert exported.splitlines()[0] == "entry,reason,created,expires,detail"
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.toml").write_text((site / "config.toml").read_text())
    (other / "seeds").mkdir()
    csv = tmp_path / "list.csv"
    csv.write_text(
        exported
        + "b@example.com,complaint,2026-01-02T03:04:05+00:00,,FBL\n"
        + "nonsense,manual,,,\n"
        + "c@example.com,bogus,,,\n"
        + "d@example.com,soft_bounce,,2000-01-01T00:00:00+00:00,ended long ago\n",
        encoding="utf-8",
    )
    result = publish(other, "suppressions", "import", str(csv), check=False)
    assert result.stdout.strip() == "3 added, 1 unchanged, 2 rejected", result.stdout
    assert f"{csv}:5: 'nonsense' is not a valid email address" in result.stderr
    assert f"{csv}:6: unknown reason 'bogus'" in result.stderr
    lines = publish(other, "suppressions", "export").stdout.splitlines()
    b = "b@example.com,complaint,2026-01-02T03:04:05+00:00,,FBL"
    assert lines[1:] == [*exported.splitlines()[1:], b]  # by entry: @example.org, a@, b@


def test_an_import_without_an_entry_column_is_one_line(site, tmp_path):
    csv = tmp_path / "x.csv"
    csv.write_text("address\nx@example.com\n")
    result = publish(site, "suppressions", "import", str(csv), check=False)
    assert (
        result.returncode == 2
        and result.stderr.strip() == f"publish: {csv}: no 'entry' (or 'email') column in the header line"
    )


def test_adding_a_suppressed_subscriber_says_the_list_still_wins(site):
    publish(site, "suppressions", "add", "@spam.example")
    result = publish(site, "subscribers", "add", "reader@spam.example")
    assert result.stdout.strip() == "added reader@spam.example"
    assert result.stderr.strip() == (
        "note: @spam.example is on the suppression list (manual): reader@spam.example gets nothing "
        "until `publish suppressions remove @spam.example`"
    )
    assert publish(site, "subscribers", "add", "other@example.com").stderr == ""


def test_an_import_reads_its_file_as_it_goes_a_batch_at_a_time(tmp_path):
    """A list of any length takes the memory of one batch: each batch is stored (and its
    problems told) before the next lines are read."""
    from publisher import suppression
    from publisher.csvrows import BATCH
    from publisher.store import Store

    read = 0
    told: list[tuple[str, int]] = []

    def lines():
        nonlocal read
        yield "entry,reason\n"
        for i in range(3 * BATCH):
            read += 1
            yield (f"bad{i}\n" if i % BATCH == 5 else f"reader{i}@example.com,hard_bounce\n")

    store = Store.open(f"sqlite:///{tmp_path / 'p.db'}")
    try:
        report = suppression.import_csv(
            store, lines(), "big.csv", on_problem=lambda p: told.append((p, read))
        )
        assert (report.added, report.unchanged, report.rejected) == (3 * BATCH - 3, 0, 3)
        assert [p.split(": ")[0] for p, _ in told] == [
            "big.csv:7",
            f"big.csv:{BATCH + 7}",
            f"big.csv:{2 * BATCH + 7}",
        ]
        assert [when for _, when in told] == [BATCH, 2 * BATCH, 3 * BATCH]  # not all read at first
        assert len(list(store.feedback.suppressions(batch=7))) == 3 * BATCH - 3
    finally:
        store.close()


def test_an_import_of_a_file_that_is_not_utf8_changes_nothing(site, tmp_path):
    csv = tmp_path / "list.csv"
    csv.write_bytes(
        b"entry\n" + b"".join(b"r%d@example.com\n" % i for i in range(3000)) + b"caf\xe9@example.com\n"
    )
    result = publish(site, "suppressions", "import", str(csv), check=False)
    assert result.returncode == 2 and result.stderr.startswith(f"publish: {csv}: cannot read:"), result.stderr
    assert publish(site, "suppressions", "list").stdout == ""
