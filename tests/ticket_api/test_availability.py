from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from services.ticket_api.scheduling import availability
from services.ticket_api.scheduling.availability import Interval, bookable_slots, grid_slots, is_bookable
from shared.closed_days import ClosedDays

CHICAGO = ZoneInfo("America/Chicago")
WEEK = {day: [["09:00", "12:00"], ["13:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}


def local(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=CHICAGO)


def slots(
    window: Interval, busy: list[Interval] | None = None, duration: int = 60, **kw: object
) -> list[datetime]:
    return bookable_slots(
        weekly_hours=WEEK,
        timezone="America/Chicago",
        window=window,
        busy=busy or [],
        slot_minutes=30,
        duration_minutes=duration,
        earliest=kw.get("earliest", window.start),  # type: ignore[arg-type]
    )


def test_a_working_day_offers_hour_slots_on_the_half_hour_grid_outside_lunch() -> None:
    tuesday = Interval(local(2026, 11, 24, 0), local(2026, 11, 25, 0))
    starts = [s.astimezone(CHICAGO).strftime("%H:%M") for s in slots(tuesday)]
    assert starts == [
        "09:00",
        "09:30",
        "10:00",
        "10:30",
        "11:00",
        "13:00",
        "13:30",
        "14:00",
        "14:30",
        "15:00",
        "15:30",
        "16:00",
    ]


def test_weekends_time_off_and_bookings_are_not_offered() -> None:
    weekend = Interval(local(2026, 11, 28, 0), local(2026, 11, 30, 0))
    assert slots(weekend) == []
    tuesday = Interval(local(2026, 11, 24, 0), local(2026, 11, 25, 0))
    busy = [
        Interval(local(2026, 11, 24, 9), local(2026, 11, 24, 12)),
        Interval(local(2026, 11, 24, 14), local(2026, 11, 24, 15)),
    ]
    starts = [s.astimezone(CHICAGO).strftime("%H:%M") for s in slots(tuesday, busy)]
    assert starts == ["13:00", "15:00", "15:30", "16:00"]


def test_nothing_sooner_than_the_earliest_instant() -> None:
    tuesday = Interval(local(2026, 11, 24, 0), local(2026, 11, 25, 0))
    starts = slots(tuesday, earliest=local(2026, 11, 24, 15, 10))
    assert [s.astimezone(CHICAGO).strftime("%H:%M") for s in starts] == ["15:30", "16:00"]


def test_dst_keeps_local_opening_hours() -> None:
    # 2026-11-02 is the Monday after the switch to CST: 09:00 local is 15:00 UTC (it was 14:00).
    before = slots(Interval(local(2026, 10, 30, 0), local(2026, 10, 31, 0)))[0]
    after = slots(Interval(local(2026, 11, 2, 0), local(2026, 11, 3, 0)))[0]
    assert (before.astimezone(UTC).hour, after.astimezone(UTC).hour) == (14, 15)
    assert before.astimezone(CHICAGO).hour == after.astimezone(CHICAGO).hour == 9


def test_is_bookable_agrees_with_the_listing() -> None:
    rules = dict(
        weekly_hours=WEEK,
        timezone="America/Chicago",
        busy=[],
        slot_minutes=30,
        duration_minutes=60,
        earliest=local(2026, 11, 1, 0),
    )
    assert is_bookable(local(2026, 11, 24, 10), **rules)  # type: ignore[arg-type]
    assert not is_bookable(local(2026, 11, 24, 10, 15), **rules)  # type: ignore[arg-type]  # off the grid
    assert not is_bookable(local(2026, 11, 24, 11, 30), **rules)  # type: ignore[arg-type]  # runs into lunch
    assert not is_bookable(local(2026, 11, 24, 17), **rules)  # type: ignore[arg-type]
    assert grid_slots(local(2026, 11, 24, 10), 90, 30) == [
        local(2026, 11, 24, 10),
        local(2026, 11, 24, 10, 30),
        local(2026, 11, 24, 11),
    ]


@given(
    day=st.integers(min_value=0, max_value=400),
    busy_start=st.integers(min_value=0, max_value=48 * 2),
    busy_len=st.integers(min_value=1, max_value=8),
    duration=st.sampled_from([30, 60, 90, 120]),
)
def test_offered_slots_are_always_inside_hours_and_clear_of_busy_time(
    day: int, busy_start: int, busy_len: int, duration: int
) -> None:
    start = local(2026, 1, 1, 0) + timedelta(days=day)
    window = Interval(start, start + timedelta(days=3))
    busy = Interval(
        start + timedelta(minutes=30 * busy_start), start + timedelta(minutes=30 * (busy_start + busy_len))
    )
    for slot in slots(window, [busy], duration=duration):
        appointment = Interval(slot, slot + timedelta(minutes=duration))
        assert not appointment.overlaps(busy)
        local_start = slot.astimezone(CHICAGO)
        assert local_start.weekday() < 5 and local_start.minute in (0, 30)
        assert 9 <= local_start.hour < 17


def test_thanksgiving_is_not_bookable_the_day_after_is() -> None:
    week = Interval(local(2026, 11, 23, 0), local(2026, 11, 28, 0))
    closed = availability.closed_intervals(ClosedDays(), week)
    assert closed == [Interval(local(2026, 11, 26, 0), local(2026, 11, 27, 0))]
    days = {s.astimezone(CHICAGO).date() for s in slots(week, closed)}
    assert date(2026, 11, 26) not in days and date(2026, 11, 27) in days
    assert not is_bookable(
        local(2026, 11, 26, 10),
        weekly_hours=WEEK,
        timezone="America/Chicago",
        busy=closed,
        slot_minutes=30,
        duration_minutes=60,
        earliest=local(2026, 11, 1, 0),
    )


def test_closed_days_follow_the_calendar_region_zone_and_dates() -> None:
    week = Interval(local(2026, 8, 24, 0), local(2026, 8, 29, 0))
    assert availability.closed_intervals(ClosedDays(), week) == []
    # Louisiana does not close on these days; the UK's summer bank holiday is 31 Aug 2026.
    london = ClosedDays(timezone="Europe/London", holiday_country="GB", holiday_subdivision="ENG")
    late_august = Interval(local(2026, 8, 30, 0), local(2026, 9, 2, 0))
    [(opens, closes)] = [(i.start, i.end) for i in availability.closed_intervals(london, late_august)]
    assert opens == datetime(2026, 8, 31, 0, 0, tzinfo=ZoneInfo("Europe/London"))
    assert closes - opens == timedelta(days=1)
    extra = ClosedDays(holiday_country=None, closed_dates=frozenset({date(2026, 8, 25)}))
    assert [i.start for i in availability.closed_intervals(extra, week)] == [local(2026, 8, 25, 0)]
    assert extra.name_of(date(2026, 8, 25)) == "a day our office is closed"
    assert ClosedDays().name_of(date(2026, 11, 26)) == "Thanksgiving Day"


def test_a_customers_reasonable_hours_are_in_their_own_zone() -> None:
    berlin_09 = datetime(2026, 11, 24, 9, 0, tzinfo=ZoneInfo("Europe/Berlin"))  # 02:00 in Chicago
    hour = timedelta(hours=1)
    assert availability.within_local_hours(berlin_09, berlin_09 + hour, "Europe/Berlin", time(7), time(21))
    assert not availability.within_local_hours(
        berlin_09, berlin_09 + hour, "America/Chicago", time(7), time(21)
    )
    assert not availability.within_local_hours(
        local(2026, 11, 24, 20, 30), local(2026, 11, 24, 21, 30), "America/Chicago", time(7), time(21)
    )
