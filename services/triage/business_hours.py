"""Business calendars: weekly working hours in a timezone, minus public holidays and closed days.

Business time is real elapsed time inside working spans. Spans are local wall-clock times
(``09:00``-``17:00``) turned into instants day by day in the calendar's timezone, so a DST
change never moves the opening away from 09:00 local; a span that crosses the change itself
(say ``00:00``-``24:00``) simply lasts 23 or 25 hours that day.

Intervals are half-open: ``[09:00, 17:00)``. An instant at 17:00 Friday is after hours, but
adding business minutes that run out exactly at 17:00 ends at 17:00 (not Monday 09:00).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

from shared.closed_days import ClosedDays, public_holiday_names

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 24 * 60
DEFAULT_TIMEZONE = "America/Chicago"
DEFAULT_HOLIDAY_COUNTRY = "US"

_TIME_OF_DAY = re.compile(r"^(\d{2}):(\d{2})$")
# Days without any working interval in a row before we give up (a calendar whose every day is
# closed for years is a configuration error, not a reason to loop until year 9999).
_MAX_IDLE_DAYS = 3 * 366
_LATEST = datetime(9998, 1, 1, tzinfo=UTC)


class CalendarError(ValueError):
    """A calendar configuration that cannot work (the message says what to fix)."""


@dataclass(frozen=True, slots=True, order=True)
class Span:
    """Working time within one local day, in minutes after midnight (end may be 1440)."""

    start: int
    end: int

    def __str__(self) -> str:
        return f"{format_time_of_day(self.start)}-{format_time_of_day(self.end)}"


# Index 0 is Monday, as in ``date.weekday()``.
WeeklyHours = tuple[tuple[Span, ...], ...]


def parse_time_of_day(text: str) -> int:
    """``"09:30"`` -> 570. ``"24:00"`` is allowed (the end of a day)."""
    match = _TIME_OF_DAY.match(text) if isinstance(text, str) else None
    if not match:
        raise CalendarError(f"{text!r} is not a time of day like '09:00'")
    hours, minutes = int(match[1]), int(match[2])
    if hours > 24 or minutes > 59 or (hours == 24 and minutes):
        raise CalendarError(f"{text!r} is not a time of day like '09:00'")
    return hours * 60 + minutes


def format_time_of_day(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def parse_weekly_hours(
    raw: Mapping[str, Sequence[Sequence[str]]], *, require_hours: bool = True
) -> WeeklyHours:
    """``{"mon": [["09:00", "12:00"], ["13:00", "17:00"]], ...}`` -> :data:`WeeklyHours`.

    Raises :class:`CalendarError` for an unknown weekday, a malformed, inverted or empty span,
    overlapping spans, or (with ``require_hours``) a week without any working time. Touching
    spans (12:00-13:00 and 13:00-14:00) are merged.
    """
    days: list[list[Span]] = [[] for _ in WEEKDAYS]
    for day, spans in raw.items():
        if day not in WEEKDAYS:
            raise CalendarError(f"unknown weekday {day!r}; use one of {', '.join(WEEKDAYS)}")
        for pair in spans:
            if len(pair) != 2:
                raise CalendarError(f"{day}: each span is [start, end], e.g. ['09:00', '17:00']")
            start, end = parse_time_of_day(pair[0]), parse_time_of_day(pair[1])
            if start >= end:
                raise CalendarError(f"{day}: span {pair[0]}-{pair[1]} does not end after it starts")
            days[WEEKDAYS.index(day)].append(Span(start, end))
    week: list[tuple[Span, ...]] = []
    for day, day_spans in zip(WEEKDAYS, days, strict=True):
        merged: list[Span] = []
        for span in sorted(day_spans):
            if merged and span.start < merged[-1].end:
                raise CalendarError(f"{day}: spans {merged[-1]} and {span} overlap")
            if merged and span.start == merged[-1].end:
                merged[-1] = Span(merged[-1].start, span.end)
            else:
                merged.append(span)
        week.append(tuple(merged))
    if require_hours and not any(week):
        raise CalendarError("a calendar needs working hours on at least one weekday")
    return tuple(week)


def format_weekly_hours(week: WeeklyHours) -> dict[str, list[list[str]]]:
    return {
        day: [[format_time_of_day(s.start), format_time_of_day(s.end)] for s in spans]
        for day, spans in zip(WEEKDAYS, week, strict=True)
        if spans
    }


DEFAULT_WEEKLY_HOURS: WeeklyHours = parse_weekly_hours({day: [["09:00", "17:00"]] for day in WEEKDAYS[:5]})


def check_timezone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CalendarError(f"unknown IANA timezone {name!r} (e.g. 'America/Chicago')") from None


@lru_cache(maxsize=1)
def _supported_regions() -> dict[str, list[str]]:
    return dict(holidays.list_supported_countries())


def check_holiday_region(country: str | None, subdivision: str | None) -> None:
    if country is None:
        if subdivision is not None:
            raise CalendarError("a holiday subdivision needs a holiday country")
        return
    supported = _supported_regions()
    if country not in supported:
        raise CalendarError(f"no public holidays known for country {country!r} (use an ISO code, e.g. 'US')")
    if subdivision is not None and subdivision not in supported[country]:
        raise CalendarError(f"{country} has no subdivision {subdivision!r}")


@dataclass(frozen=True)
class BusinessCalendar:
    """Weekly hours in a timezone, closed on public holidays of a country (optional) and on
    extra closed dates. Construction validates everything and raises :class:`CalendarError`."""

    timezone: str = DEFAULT_TIMEZONE
    weekly_hours: WeeklyHours = DEFAULT_WEEKLY_HOURS
    holiday_country: str | None = DEFAULT_HOLIDAY_COUNTRY
    holiday_subdivision: str | None = None
    closed_dates: frozenset[date] = frozenset()
    zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "zone", check_timezone(self.timezone))
        if len(self.weekly_hours) != 7:
            raise CalendarError("weekly hours need an entry per weekday")
        if not any(self.weekly_hours):
            raise CalendarError("a calendar needs working hours on at least one weekday")
        check_holiday_region(self.holiday_country, self.holiday_subdivision)

    def is_closed(self, day: date) -> bool:
        """Closed all day: an extra closed date or a public holiday."""
        if day in self.closed_dates:
            return True
        if self.holiday_country is None:
            return False
        return day in public_holiday_names(self.holiday_country, self.holiday_subdivision, day.year)

    @property
    def closed_days(self) -> ClosedDays:
        """The closed days alone (what booking honours too)."""
        return ClosedDays(self.timezone, self.holiday_country, self.holiday_subdivision, self.closed_dates)

    def closure_name(self, day: date) -> str | None:
        """Why the office is closed all day: the public holiday's name ("Thanksgiving Day"),
        a closed date's :data:`~shared.closed_days.CLOSED_DATE_NAME`, None on an ordinary day."""
        return self.closed_days.name_of(day)

    def intervals_of(self, day: date) -> list[tuple[datetime, datetime]]:
        """The working intervals of one local day, as UTC instants, in order."""
        spans = self.weekly_hours[day.weekday()]
        if not spans or self.is_closed(day):
            return []
        return [(self._instant(day, span.start), self._instant(day, span.end)) for span in spans]

    def _instant(self, day: date, minute: int) -> datetime:
        if minute == MINUTES_PER_DAY:
            day, minute = day + timedelta(days=1), 0
        local = datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=self.zone)
        return local.astimezone(UTC)

    def intervals_from(self, instant: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Working intervals (UTC, half-open) that end after ``instant``, clipped to start no
        earlier than it, in order, forever (raises :class:`OverflowError` past year 9998 or
        after years without any working day)."""
        cursor = _utc(instant)
        day = cursor.astimezone(self.zone).date() - timedelta(days=1)
        idle_days = 0
        while True:
            found = False
            for start, end in self.intervals_of(day):
                if end <= cursor:
                    continue
                found = True
                start = max(start, cursor)
                yield start, end
                cursor = end
            idle_days = 0 if found else idle_days + 1
            if idle_days > _MAX_IDLE_DAYS or day.year >= 9998:
                raise OverflowError("no working time within reach of this calendar")
            day += timedelta(days=1)


def _utc(instant: datetime) -> datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("business-time maths needs a timezone-aware instant")
    return instant.astimezone(UTC)


def add_business_time(instant: datetime, duration: timedelta, calendar: BusinessCalendar) -> datetime:
    """The earliest instant by which ``duration`` of business time has passed since ``instant``
    (UTC). A zero duration returns ``instant`` itself, even after hours."""
    if duration < timedelta(0):
        raise ValueError("cannot add a negative business duration")
    start = _utc(instant)
    if not duration:
        return start
    if duration > _LATEST - start:
        # Business time never runs faster than real time.
        raise OverflowError("the result would lie beyond the calendar's range")
    remaining = duration
    for span_start, span_end in calendar.intervals_from(start):
        available = span_end - span_start
        if remaining <= available:
            return span_start + remaining
        remaining -= available
    raise AssertionError("unreachable: intervals_from never ends")  # pragma: no cover


def business_time_between(a: datetime, b: datetime, calendar: BusinessCalendar) -> timedelta:
    """Business time in ``[a, b)``; zero when ``b`` is not after ``a``."""
    start, end = _utc(a), _utc(b)
    total = timedelta(0)
    if end <= start:
        return total
    for span_start, span_end in calendar.intervals_from(start):
        if span_start >= end:
            break
        total += min(span_end, end) - span_start
        if span_end >= end:
            break
    return total


def add_business_minutes(instant: datetime, minutes: float, calendar: BusinessCalendar) -> datetime:
    """``instant`` plus ``minutes`` business minutes (see :func:`add_business_time`)."""
    return add_business_time(instant, timedelta(minutes=minutes), calendar)


def business_minutes_between(a: datetime, b: datetime, calendar: BusinessCalendar) -> float:
    """Business minutes in ``[a, b)``; 0 when ``b`` is not after ``a``."""
    return business_time_between(a, b, calendar) / timedelta(minutes=1)


def next_business_instant(instant: datetime, calendar: BusinessCalendar) -> datetime:
    """``instant`` if it is within working hours, else the next opening (where an SLA clock
    started after hours begins to count)."""
    start, _end = next(calendar.intervals_from(instant))
    return start


def is_business_time(instant: datetime, calendar: BusinessCalendar) -> bool:
    return next_business_instant(instant, calendar) == _utc(instant)


def closed_days_between(start: datetime, end: datetime, calendar: BusinessCalendar) -> list[tuple[date, str]]:
    """The closed days (holidays, closed dates) from ``start``'s local day up to ``end``'s
    local day, both included, with their names: why a clock started at ``end``, not ``start``."""
    first, last = _utc(start).astimezone(calendar.zone).date(), _utc(end).astimezone(calendar.zone).date()
    found: list[tuple[date, str]] = []
    day = first
    while day <= last and len(found) < 31:
        name = calendar.closure_name(day)
        if name is not None:
            found.append((day, name))
        day += timedelta(days=1)
    return found
