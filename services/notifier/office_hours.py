"""Office hours as the acknowledgment states them: is the office open, and when is a first
answer due ("within four business hours" of a ticket's arrival).

Deliberately minimal: one opening span a day on the given weekdays, in one timezone, closed on
public holidays (``shared.closed_days``, the same source triage counts with) and listed dates.
Triage owns the authoritative SLA calendar; this only lets the acknowledgment go out at once,
before triage has run. Local wall-clock arithmetic per day, so
DST days are counted as their clocks show.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from shared.closed_days import CLOSED_DATE_NAME, ClosedDays


@dataclass(frozen=True)
class OfficeHours:
    timezone: str = "America/Chicago"
    opens: time = time(9, 0)
    closes: time = time(17, 0)
    weekdays: frozenset[int] = frozenset(range(5))  # Monday = 0
    holidays: frozenset[date] = field(default_factory=frozenset)
    public_holidays: ClosedDays | None = None  # None: only ``holidays``

    def __post_init__(self) -> None:
        if self.closes <= self.opens:
            raise ValueError("the office must close after it opens")
        if not self.weekdays or not self.weekdays <= frozenset(range(7)):
            raise ValueError("weekdays must be a non-empty subset of 0..6")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def closure_name(self, day: date) -> str | None:
        """Why the office is closed all day (a holiday's name), None on an ordinary day."""
        name = self.public_holidays.name_of(day) if self.public_holidays is not None else None
        return name or (CLOSED_DATE_NAME if day in self.holidays else None)

    def is_business_day(self, day: date) -> bool:
        return day.weekday() in self.weekdays and self.closure_name(day) is None

    def _span(self, day: date) -> tuple[datetime, datetime]:
        zone = self.zone
        return datetime.combine(day, self.opens, zone), datetime.combine(day, self.closes, zone)

    def is_open(self, moment: datetime) -> bool:
        local = moment.astimezone(self.zone)
        if not self.is_business_day(local.date()):
            return False
        start, end = self._span(local.date())
        return start <= local < end


def add_business_minutes(start: datetime, minutes: int, hours: OfficeHours) -> datetime:
    """The moment ``minutes`` of open office time after ``start`` (timezone-aware, UTC result).

    Time before opening, after closing, on closed days and holidays does not count; a ticket
    logged after hours starts counting at the next opening."""
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    if minutes < 0:
        raise ValueError("minutes must not be negative")
    local = start.astimezone(hours.zone)
    day = local.date()
    remaining = timedelta(minutes=minutes)
    for _ in range(3660):  # ten years of days: a calendar with no open day is refused above
        if hours.is_business_day(day):
            opens, closes = hours._span(day)
            begin = max(opens, local)
            if begin < closes:
                available = closes - begin
                if remaining <= available:
                    return (begin + remaining).astimezone(UTC)
                remaining -= available
        day += timedelta(days=1)
        local = datetime.combine(day, time(0, 0), hours.zone)
    raise ValueError("no business hours within ten years")


def next_opening(moment: datetime, hours: OfficeHours) -> datetime:
    """``moment`` itself when the office is open, else the next time it opens (UTC)."""
    return add_business_minutes(moment, 0, hours)
