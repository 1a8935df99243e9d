"""The acknowledgment's due time: four business hours of the office's calendar."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from services.notifier.office_hours import OfficeHours, add_business_minutes, next_opening

CHICAGO = ZoneInfo("America/Chicago")
HOURS = OfficeHours(holidays=frozenset({date(2025, 7, 4)}))


def chicago(*args: int) -> datetime:
    return datetime(*args, tzinfo=CHICAGO)  # type: ignore[misc]


def test_within_the_day() -> None:
    assert add_business_minutes(chicago(2025, 3, 4, 10, 0), 240, HOURS) == chicago(2025, 3, 4, 14, 0)


def test_friday_evening_is_due_monday_one_pm() -> None:
    friday_evening = chicago(2025, 3, 7, 18, 30)
    assert add_business_minutes(friday_evening, 240, HOURS) == chicago(2025, 3, 10, 13, 0)
    assert not HOURS.is_open(friday_evening)
    assert next_opening(friday_evening, HOURS) == chicago(2025, 3, 10, 9, 0)


def test_spills_over_into_the_next_morning() -> None:
    assert add_business_minutes(chicago(2025, 3, 4, 15, 0), 240, HOURS) == chicago(2025, 3, 5, 11, 0)


def test_a_holiday_counts_from_the_next_business_day() -> None:
    assert add_business_minutes(chicago(2025, 7, 4, 10, 0), 240, HOURS) == chicago(2025, 7, 7, 13, 0)


def _business_minutes_between(start: datetime, end: datetime, hours: OfficeHours) -> int:
    count, moment = 0, start.astimezone(UTC).replace(second=0, microsecond=0)
    while moment < end:
        count += hours.is_open(moment)
        moment += timedelta(minutes=1)
    return count


@given(
    st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2026, 12, 31)).map(
        lambda d: d.replace(second=0, microsecond=0, tzinfo=UTC)
    ),
    st.integers(min_value=0, max_value=600),
)
def test_counts_exactly_the_open_minutes(start: datetime, minutes: int) -> None:
    due = add_business_minutes(start, minutes, HOURS)
    assert due >= start
    assert _business_minutes_between(start, due, HOURS) == minutes
    if minutes:
        assert HOURS.is_open(due - timedelta(minutes=1))
