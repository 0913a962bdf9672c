"""Publication dates in the forms newsrooms write them, always timezone-aware."""

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from publisher.sources.dates import parse_date

SEOUL = ZoneInfo("Asia/Seoul")
KST_1450 = datetime(2025, 5, 26, 5, 50, tzinfo=UTC)  # 14:50 in Seoul


@pytest.mark.parametrize(
    "text",
    [
        "26 May. 2025, 14:50",
        "26 May 2025, 14:50",
        "26 May 2025 14:50",
        "26 May. 2025, 14:50 KST",
        "2025-05-26T14:50",
        "2025-05-26 14:50:00",
        "2025-05-26T14:50:00+09:00",
        "2025-05-26T05:50:00Z",
        "2025-05-26 05:50 UTC",
        "Mon, 26 May 2025 14:50:00 +0900",
        "Mon, 26 May 2025 05:50:00 GMT",
        "May 26, 2025 2:50 PM",
        "May 26, 2025, 2:50 p.m.",
        "May 26, 2025 14:50",
        "2025/05/26 14:50",
        "2025.05.26 14:50",
        "  26   May.  2025,   14:50  ",
    ],
)
def test_the_same_moment_in_every_common_form(text):
    when = parse_date(text, SEOUL)
    assert when == KST_1450, text
    assert when.utcoffset() is not None


def test_dates_without_a_time_are_midnight_in_the_site_timezone():
    for text in ("2025-05-26", "26 May 2025", "May 26, 2025", "Sept. 3, 2025"):
        when = parse_date(text, SEOUL)
        assert when is not None and when.utcoffset() == timedelta(hours=9), text
        assert (when.hour, when.minute) == (0, 0)


def test_an_explicit_offset_wins_over_the_site_timezone():
    when = parse_date("2025-05-26T14:50:00-04:00", SEOUL)
    assert when.utcoffset() == timedelta(hours=-4)
    assert parse_date("26 May 2025 14:50 KST", ZoneInfo("UTC")).utcoffset() == timedelta(hours=9)
    assert parse_date("26 May 2025 14:50", timezone(timedelta(hours=1))).utcoffset() == timedelta(hours=1)


@pytest.mark.parametrize(
    "text", ["", "   ", "tomorrow", "32 May 2025", "2025-13-01", "0001-01-01", "9999-12-31", "26 Mai 2025"]
)
def test_unreadable_or_implausible_dates_are_none(text):
    assert parse_date(text, SEOUL) is None
