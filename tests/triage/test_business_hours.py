"""Business-time maths: examples that pin the rules (S2, holidays, DST) and properties that
must hold for any calendar and instant."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.triage.business_hours import (
    WEEKDAYS,
    BusinessCalendar,
    CalendarError,
    add_business_minutes,
    add_business_time,
    business_minutes_between,
    business_time_between,
    format_weekly_hours,
    is_business_time,
    next_business_instant,
    parse_weekly_hours,
)

CHICAGO = ZoneInfo("America/Chicago")
DEFAULT = BusinessCalendar()
ALWAYS_OPEN = BusinessCalendar(
    weekly_hours=parse_weekly_hours({day: [["00:00", "24:00"]] for day in WEEKDAYS}), holiday_country=None
)


def chicago(*args: int) -> datetime:
    return datetime(*args, tzinfo=CHICAGO)


# --- examples ----------------------------------------------------------------------------------


def test_a_ticket_logged_friday_evening_is_due_monday_1300() -> None:
    """S2: Friday 18:30 -> four business hours from Monday 09:00."""
    due = add_business_minutes(chicago(2026, 11, 20, 18, 30), 240, DEFAULT)
    assert due == chicago(2026, 11, 23, 13, 0)
    assert next_business_instant(chicago(2026, 11, 20, 18, 30), DEFAULT) == chicago(2026, 11, 23, 9, 0)


def test_within_hours_the_clock_runs_at_once() -> None:
    assert add_business_minutes(chicago(2026, 11, 24, 10, 0), 240, DEFAULT) == chicago(2026, 11, 24, 14, 0)
    assert is_business_time(chicago(2026, 11, 24, 10, 0), DEFAULT)


def test_minutes_running_out_at_closing_end_at_closing() -> None:
    assert add_business_minutes(chicago(2026, 11, 24, 13, 0), 240, DEFAULT) == chicago(2026, 11, 24, 17, 0)
    assert add_business_minutes(chicago(2026, 11, 24, 13, 0), 241, DEFAULT) == chicago(2026, 11, 25, 9, 1)
    assert not is_business_time(chicago(2026, 11, 24, 17, 0), DEFAULT)


def test_a_ticket_logged_on_a_public_holiday_counts_from_the_next_business_day() -> None:
    thanksgiving = chicago(2026, 11, 26, 10, 0)
    assert add_business_minutes(thanksgiving, 240, DEFAULT) == chicago(2026, 11, 27, 13, 0)
    # From Wednesday afternoon: two hours Wednesday, Thursday closed, two more on Friday.
    assert add_business_minutes(chicago(2026, 11, 25, 15, 0), 240, DEFAULT) == chicago(2026, 11, 27, 11, 0)


def test_extra_closed_days_and_no_holidays() -> None:
    closed = BusinessCalendar(closed_dates=frozenset({date(2026, 11, 27)}))
    assert add_business_minutes(chicago(2026, 11, 25, 15, 0), 240, closed) == chicago(2026, 11, 30, 11, 0)
    open_on_holidays = BusinessCalendar(holiday_country=None)
    assert add_business_minutes(chicago(2026, 11, 26, 10, 0), 240, open_on_holidays) == chicago(
        2026, 11, 26, 14, 0
    )


def test_subdivision_holidays() -> None:
    # Lincoln's Birthday (Feb 12) is a public holiday in Illinois, not federally.
    illinois = BusinessCalendar(holiday_subdivision="IL")
    assert add_business_minutes(chicago(2026, 2, 12, 9, 0), 60, DEFAULT) == chicago(2026, 2, 12, 10, 0)
    assert add_business_minutes(chicago(2026, 2, 12, 9, 0), 60, illinois) == chicago(2026, 2, 13, 10, 0)


def test_opening_stays_at_0900_local_across_dst() -> None:
    # DST starts Sunday 2026-03-08: Friday is UTC-6, Monday UTC-5.
    due = add_business_minutes(chicago(2026, 3, 6, 15, 0), 240, DEFAULT)
    assert due == chicago(2026, 3, 9, 11, 0)
    assert due.astimezone(UTC) == datetime(2026, 3, 9, 16, 0, tzinfo=UTC)
    # DST ends Sunday 2026-11-01.
    assert add_business_minutes(chicago(2026, 10, 30, 15, 0), 240, DEFAULT) == chicago(2026, 11, 2, 11, 0)


def test_a_span_across_the_dst_change_lasts_its_real_length() -> None:
    spring = business_minutes_between(chicago(2026, 3, 8, 0, 0), chicago(2026, 3, 9, 0, 0), ALWAYS_OPEN)
    autumn = business_minutes_between(chicago(2026, 11, 1, 0, 0), chicago(2026, 11, 2, 0, 0), ALWAYS_OPEN)
    assert (spring, autumn) == (23 * 60, 25 * 60)


def test_weekends_count_nothing() -> None:
    assert business_minutes_between(chicago(2026, 11, 21, 8, 0), chicago(2026, 11, 22, 20, 0), DEFAULT) == 0
    assert (
        business_minutes_between(chicago(2026, 11, 20, 16, 0), chicago(2026, 11, 23, 10, 0), DEFAULT) == 120
    )


def test_zero_duration_and_reversed_ranges() -> None:
    evening = chicago(2026, 11, 20, 18, 30)
    assert add_business_minutes(evening, 0, DEFAULT) == evening
    assert business_minutes_between(evening, evening - timedelta(hours=5), DEFAULT) == 0
    with pytest.raises(ValueError, match="negative"):
        add_business_minutes(evening, -1, DEFAULT)
    with pytest.raises(ValueError, match="timezone-aware"):
        add_business_minutes(datetime(2026, 11, 20, 18, 30), 10, DEFAULT)


def test_huge_durations_stay_exact_and_fast() -> None:
    start = chicago(2026, 11, 20, 18, 30)
    forty_years = 480 * 250 * 40
    due = add_business_minutes(start, forty_years, DEFAULT)
    assert 2065 <= due.year <= 2067
    assert business_minutes_between(start, due, DEFAULT) == forty_years
    with pytest.raises(OverflowError):
        add_business_minutes(start, 10**10, DEFAULT)


def test_a_calendar_closed_for_years_refuses_instead_of_looping() -> None:
    closed = frozenset(date(2026, 1, 1) + timedelta(days=n) for n in range(4 * 366))
    calendar = BusinessCalendar(closed_dates=closed, holiday_country=None)
    with pytest.raises(OverflowError):
        add_business_minutes(chicago(2026, 1, 1, 9, 0), 1, calendar)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"weekly_hours": parse_weekly_hours({}, require_hours=False)}, "at least one weekday"),
        ({"timezone": "Mars/Olympus_Mons"}, "unknown IANA timezone"),
        ({"holiday_country": "ZZ"}, "no public holidays known"),
        ({"holiday_subdivision": "XX"}, "has no subdivision"),
        ({"holiday_country": None, "holiday_subdivision": "IL"}, "needs a holiday country"),
    ],
)
def test_unworkable_calendars_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(CalendarError, match=message):
        BusinessCalendar(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("hours", "message"),
    [
        ({}, "at least one weekday"),
        ({"mon": []}, "at least one weekday"),
        ({"mon": [["17:00", "09:00"]]}, "does not end after it starts"),
        ({"mon": [["09:00", "09:00"]]}, "does not end after it starts"),
        ({"mon": [["09:00", "13:00"], ["12:00", "17:00"]]}, "overlap"),
        ({"mon": [["9am", "5pm"]]}, "not a time of day"),
        ({"mon": [["09:00", "24:30"]]}, "not a time of day"),
        ({"mon": [["09:00"]]}, r"\[start, end\]"),
        ({"monday": [["09:00", "17:00"]]}, "unknown weekday"),
    ],
)
def test_bad_weekly_hours_are_refused(hours: dict[str, list[list[str]]], message: str) -> None:
    with pytest.raises(CalendarError, match=message):
        parse_weekly_hours(hours)


def test_touching_spans_merge_and_round_trip() -> None:
    week = parse_weekly_hours({"tue": [["13:00", "17:00"], ["09:00", "13:00"]], "sat": [["22:00", "24:00"]]})
    assert format_weekly_hours(week) == {"tue": [["09:00", "17:00"]], "sat": [["22:00", "24:00"]]}


# --- properties --------------------------------------------------------------------------------

ZONES = ["America/Chicago", "Europe/Berlin", "Asia/Kolkata", "Australia/Lord_Howe", "Pacific/Chatham", "UTC"]


@st.composite
def calendars(draw: st.DrawFn) -> BusinessCalendar:
    hours: dict[str, list[list[str]]] = {}
    for day in WEEKDAYS:
        edges = sorted(draw(st.sets(st.integers(0, 96), max_size=6)))
        if len(edges) % 2:
            edges = edges[:-1]
        pairs = list(zip(edges[::2], edges[1::2], strict=True))
        hours[day] = [
            [f"{a * 15 // 60:02d}:{a * 15 % 60:02d}", f"{b * 15 // 60:02d}:{b * 15 % 60:02d}"]
            for a, b in pairs
        ]
    if not any(hours.values()):
        hours["wed"] = [["09:00", "17:00"]]
    closed = draw(st.frozensets(st.dates(date(2024, 1, 1), date(2031, 12, 31)), max_size=20))
    return BusinessCalendar(
        timezone=draw(st.sampled_from(ZONES)),
        weekly_hours=parse_weekly_hours(hours),
        holiday_country=draw(st.sampled_from([None, "US", "DE"])),
        closed_dates=closed,
    )


instants = st.datetimes(datetime(2024, 1, 1), datetime(2030, 12, 31), timezones=st.just(UTC))
durations = st.integers(0, 60_000).map(lambda m: timedelta(minutes=m)) | st.timedeltas(
    timedelta(0), timedelta(days=30)
)


@settings(max_examples=150, deadline=None)
@given(calendars(), instants, durations)
def test_adding_then_measuring_gives_back_the_duration(
    calendar: BusinessCalendar, start: datetime, duration: timedelta
) -> None:
    end = add_business_time(start, duration, calendar)
    assert end >= start
    assert business_time_between(start, end, calendar) == duration
    # ... and the result is the earliest such instant.
    if duration:
        assert business_time_between(start, end - timedelta(microseconds=1), calendar) < duration


@settings(max_examples=100, deadline=None)
@given(calendars(), instants, durations, durations)
def test_adding_is_monotonic_in_the_duration(
    calendar: BusinessCalendar, start: datetime, a: timedelta, b: timedelta
) -> None:
    low, high = sorted((a, b))
    assert add_business_time(start, low, calendar) <= add_business_time(start, high, calendar)


@settings(max_examples=100, deadline=None)
@given(calendars(), instants, instants, st.integers(0, 20_000))
def test_adding_is_monotonic_in_the_start(
    calendar: BusinessCalendar, a: datetime, b: datetime, minutes: int
) -> None:
    early, late = sorted((a, b))
    assert add_business_minutes(early, minutes, calendar) <= add_business_minutes(late, minutes, calendar)


@settings(max_examples=100, deadline=None)
@given(calendars(), st.lists(instants, min_size=3, max_size=3).map(sorted))
def test_measuring_is_additive_and_never_exceeds_real_time(
    calendar: BusinessCalendar, points: list[datetime]
) -> None:
    a, b, c = points
    ab, bc, ac = (business_time_between(x, y, calendar) for x, y in ((a, b), (b, c), (a, c)))
    assert ab + bc == ac
    assert timedelta(0) <= ac <= c - a


@settings(max_examples=100, deadline=None)
@given(calendars(), instants)
def test_the_next_opening_is_in_business_time(calendar: BusinessCalendar, instant: datetime) -> None:
    opening = next_business_instant(instant, calendar)
    assert opening >= instant
    assert business_time_between(instant, opening, calendar) == timedelta(0)
    assert is_business_time(opening, calendar)
