"""``publish subscribers`` with newsletters, as real processes: add with --newsletter and
--sections, list --newsletter, import and export with a newsletters column; a wrong key
or section is one line and exit 2."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from tests.three_newsletters import with_newsletters


@pytest.fixture
def nl_site(site: Path) -> Path:
    return with_newsletters(site)


def listed(run_publish, site: Path, *args: str) -> list[list[str]]:
    return [line.split("\t") for line in run_publish(site, "subscribers", "list", *args).stdout.splitlines()]


@pytest.mark.slow
def test_add_subscribes_to_the_signup_newsletters_or_those_named(nl_site: Path, run_publish) -> None:
    assert run_publish(nl_site, "subscribers", "add", "ann@example.com").stdout == "added ann@example.com\n"
    run_publish(
        nl_site, "subscribers", "add", "bo@example.com", "--name", "Bo", "--newsletter", "daily",
        "--newsletter", "breaking", "--sections", "sport,Culture",
    )  # fmt: skip
    assert listed(run_publish, nl_site) == [
        ["ann@example.com", "active", "", "daily weekly"],
        ["bo@example.com", "active", "Bo", "breaking daily"],
    ]
    assert listed(run_publish, nl_site, "--newsletter", "daily") == [
        ["ann@example.com", "active", "", "all"],
        ["bo@example.com", "active", "Bo", "sport,culture"],
    ]
    more = run_publish(nl_site, "subscribers", "add", "ann@example.com", "--newsletter", "breaking")
    assert more.stdout == "subscribed ann@example.com\n"
    run_publish(nl_site, "subscribers", "remove", "bo@example.com")
    assert listed(run_publish, nl_site, "--newsletter", "breaking", "--status", "active") == [
        ["ann@example.com", "active", "", "all"]
    ]


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--newsletter", "monthly"], "no newsletter 'monthly' (known: daily, weekly, breaking)"),
        (["--newsletter", "daily", "--sections", "Weather"], "newsletter 'daily' has no section 'weather'"),
        (
            ["--newsletter", "weekly", "--sections", "Sport"],
            "no chosen newsletter offers a choice of sections",
        ),
    ],
)
def test_a_wrong_key_or_section_is_one_line_and_exit_2(nl_site: Path, run_publish, args, problem) -> None:
    result = run_publish(nl_site, "subscribers", "add", "ann@example.com", *args, check=False)
    assert result.returncode == 2 and result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("publish: ") and problem in line
    assert run_publish(nl_site, "subscribers", "list").stdout == ""  # nothing half-done
    wrong = run_publish(nl_site, "subscribers", "list", "--newsletter", "monthly", check=False)
    assert wrong.returncode == 2 and "no newsletter 'monthly'" in wrong.stderr


def test_import_and_export_carry_the_newsletters(nl_site: Path, run_publish) -> None:
    (nl_site / "people.csv").write_text(
        "email,name,newsletters\n"
        "ann@example.com,Ann,daily breaking\n"
        "minji@example.kr,김민지,\n"
        "bad@example.com,Bad,monthly\n",
        encoding="utf-8",
    )
    result = run_publish(nl_site, "subscribers", "import", str(nl_site / "people.csv"))
    assert result.stdout.startswith("2 added, 0 reactivated, 0 already subscribed, 1 rejected")
    assert "people.csv:4: no newsletter 'monthly'" in result.stderr
    (nl_site / "more.csv").write_text("email,newsletters\nminji@example.kr,breaking\n", encoding="utf-8")
    more = run_publish(nl_site, "subscribers", "import", str(nl_site / "more.csv")).stdout
    assert (
        more == "0 added, 0 reactivated, 1 subscribed to more newsletters, 0 already subscribed, 0 rejected\n"
    )
    exported = run_publish(nl_site, "subscribers", "export").stdout
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert [(r["email"], r["name"], r["newsletters"]) for r in rows] == [
        ("ann@example.com", "Ann", "breaking daily"),
        ("minji@example.kr", "김민지", "breaking daily weekly"),
    ]
    (nl_site / "back.csv").write_text(exported, encoding="utf-8")
    again = run_publish(nl_site, "subscribers", "import", str(nl_site / "back.csv"))
    assert again.stdout.startswith("0 added, 0 reactivated, 2 already subscribed")


def test_a_site_without_newsletters_subscribes_to_its_digest(site: Path, run_publish) -> None:
    run_publish(site, "subscribers", "add", "reader@example.com", "--name", "Demo Reader")
    assert listed(run_publish, site) == [["reader@example.com", "active", "Demo Reader", "digest"]]
    result = run_publish(site, "subscribers", "add", "x@example.com", "--sections", "Sport", check=False)
    assert (
        result.returncode == 2
        and "no chosen newsletter offers a choice of sections (digest)" in result.stderr
    )
