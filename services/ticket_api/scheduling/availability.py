"""Bookable appointment slots of an agent: pure functions, no I/O.

An agent's week is ``{"mon": [["09:00", "17:00"]], …}`` in their own timezone. Slots lie on a
fixed grid (``slot_minutes`` from local midnight) inside working spans, outside time off and
booked appointments, not too soon and not too far ahead. Everything given and returned is
timezone-aware; local wall-clock times become instants day by day, so DST never moves 09:00.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from shared.closed_days import ClosedDays

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Interval:
    start: datetime
    end: datetime

    def overlaps(self, other: Interval) -> bool:
        return self.start < other.end and other.start < self.end


def _clock(text: str) -> tuple[int, int]:
    hours, minutes = (int(part) for part in text.split(":"))
    return hours, minutes


def _local_instant(day: date, hh_mm: str, zone: ZoneInfo) -> datetime:
    hours, minutes = _clock(hh_mm)
    if hours == 24:
        return datetime.combine(day + timedelta(days=1), time(0, 0), zone)
    return datetime.combine(day, time(hours, minutes), zone)


def working_intervals(
    weekly_hours: Mapping[str, Sequence[Sequence[str]]], timezone: str, start: datetime, end: datetime
) -> list[Interval]:
    """The agent's working spans that touch ``[start, end)``, as instants."""
    zone = ZoneInfo(timezone)
    day = start.astimezone(zone).date() - timedelta(days=1)
    last = end.astimezone(zone).date()
    spans: list[Interval] = []
    while day <= last:
        for opening, closing in weekly_hours.get(WEEKDAYS[day.weekday()], []):
            span = Interval(_local_instant(day, opening, zone), _local_instant(day, closing, zone))
            if span.overlaps(Interval(start, end)):
                spans.append(span)
        day += timedelta(days=1)
    return spans


def bookable_slots(
    *,
    weekly_hours: Mapping[str, Sequence[Sequence[str]]],
    timezone: str,
    window: Interval,
    busy: Iterable[Interval],
    slot_minutes: int,
    duration_minutes: int,
    earliest: datetime,
) -> list[datetime]:
    """Start instants of every ``duration_minutes`` appointment that fits: on the slot grid,
    inside one working span, within ``window``, not before ``earliest``, clear of ``busy``."""
    if duration_minutes <= 0 or duration_minutes % slot_minutes:
        raise ValueError("the duration must be a positive multiple of the slot length")
    zone = ZoneInfo(timezone)
    blocked = sorted(busy, key=lambda interval: interval.start)
    length = timedelta(minutes=duration_minutes)
    step = timedelta(minutes=slot_minutes)
    found: list[datetime] = []
    for span in working_intervals(weekly_hours, timezone, window.start, window.end):
        local_midnight = datetime.combine(span.start.astimezone(zone).date(), time(0, 0), zone)
        # First grid point at or after the opening, counted in local minutes from midnight.
        offset = (span.start - local_midnight) // timedelta(minutes=1)
        candidate = span.start + timedelta(minutes=(-offset) % slot_minutes)
        while candidate + length <= span.end:
            slot = Interval(candidate, candidate + length)
            inside = window.start <= candidate and slot.end <= window.end
            if inside and candidate >= earliest and not any(slot.overlaps(b) for b in blocked):
                found.append(candidate)
            candidate += step
    return sorted(set(found))


def is_bookable(
    start: datetime,
    *,
    weekly_hours: Mapping[str, Sequence[Sequence[str]]],
    timezone: str,
    busy: Iterable[Interval],
    slot_minutes: int,
    duration_minutes: int,
    earliest: datetime,
) -> bool:
    """Whether an appointment may start at ``start`` (the same rules as :func:`bookable_slots`)."""
    window = Interval(start, start + timedelta(minutes=duration_minutes))
    return start in bookable_slots(
        weekly_hours=weekly_hours,
        timezone=timezone,
        window=window,
        busy=busy,
        slot_minutes=slot_minutes,
        duration_minutes=duration_minutes,
        earliest=earliest,
    )


def closed_intervals(closed: ClosedDays, window: Interval) -> list[Interval]:
    """The office's closed days (public holidays, closed dates) within ``window``: whole local
    days of its calendar, on which no appointment is offered or booked."""
    return [Interval(start, end) for start, end, _name in closed.intervals(window.start, window.end)]


def within_local_hours(start: datetime, end: datetime, timezone: str, opens: time, closes: time) -> bool:
    """Whether ``[start, end)`` lies within ``opens``-``closes`` of its local day in ``timezone``
    (a customer's reasonable hours)."""
    zone = ZoneInfo(timezone)
    day = start.astimezone(zone).date()
    return datetime.combine(day, opens, zone) <= start and end <= datetime.combine(day, closes, zone)


def grid_slots(start: datetime, duration_minutes: int, slot_minutes: int) -> list[datetime]:
    """The grid slots an appointment occupies (what the database reserves, one row each)."""
    return [start + timedelta(minutes=offset) for offset in range(0, duration_minutes, slot_minutes)]
