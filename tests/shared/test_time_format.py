"""The one way times are written for people (mail and pages): the reader's zone, named."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from shared.time_format import format_clock, format_day, format_instant

MOMENT = datetime(2026, 11, 24, 22, 11, tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone", "written"),
    [
        ("America/Chicago", "Tuesday, November 24, 2026 at 4:11 PM CST"),
        ("Europe/Berlin", "Tuesday, November 24, 2026 at 11:11 PM CET"),
        ("Asia/Tokyo", "Wednesday, November 25, 2026 at 7:11 AM JST"),
        ("UTC", "Tuesday, November 24, 2026 at 10:11 PM UTC"),
        (None, "Tuesday, November 24, 2026 at 4:11 PM CST"),  # unknown reader: the office's zone
        ("Mars/Olympus", "Tuesday, November 24, 2026 at 4:11 PM CST"),
    ],
)
def test_an_instant_in_the_readers_zone(zone: str | None, written: str) -> None:
    assert format_instant(MOMENT, zone) == written


def test_summer_time_midnight_and_noon() -> None:
    assert format_clock(datetime(2026, 7, 1, 5, 0, tzinfo=UTC), "America/Chicago") == "12:00 AM CDT"
    assert format_clock(datetime(2026, 7, 1, 17, 5, tzinfo=UTC), "America/Chicago") == "12:05 PM CDT"
    assert format_day(date(2026, 11, 26)) == "Thursday, November 26, 2026"


def test_a_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        format_instant(datetime(2026, 11, 24, 16, 11), "America/Chicago")
