"""What an acknowledgment promises: by when a first answer is due, the target in words, and
whether the ticket arrived outside office hours (and is handled when the office opens, maybe
only on the next business day).

Triage holds the SLA (business calendar of the organization with its holidays, a target per
tier x priority). Its decision normally reaches notifier within a few hundred milliseconds of
the ticket, so the acknowledgment states triage's numbers; only when triage has not decided
by the time the acknowledgment must go out does notifier fall back to its own office hours
(:mod:`services.notifier.office_hours`: no organization calendars, a fixed target).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from services.notifier.office_hours import OfficeHours, add_business_minutes, next_opening
from shared.time_format import format_day, format_instant

# A clock that starts this much after the arrival was not started by it (the arrival and
# triage's copy of it may differ by a rounding of the stored timestamp).
_SAME_INSTANT = timedelta(seconds=1)

_WORDS = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
)


def in_words(number: int) -> str:
    return _WORDS[number] if 0 <= number < len(_WORDS) else str(number)


def target_in_words(minutes: int) -> str:
    """``60`` → "one business hour", ``240`` → "four business hours", ``30`` → "30 business
    minutes", ``90`` → "one business hour and 30 minutes"."""
    if minutes <= 0:
        raise ValueError("a target is a positive number of minutes")
    hours, rest = divmod(minutes, 60)
    if hours == 0:
        return f"{rest} business minute{'s' if rest != 1 else ''}"
    spoken = f"{in_words(hours)} business hour{'s' if hours != 1 else ''}"
    return f"{spoken} and {rest} minute{'s' if rest != 1 else ''}" if rest else spoken


class PromiseSource(StrEnum):
    TRIAGE = "triage"
    OFFICE_HOURS = "office_hours"


@dataclass(frozen=True)
class Promise:
    """The first-response promise of one ticket."""

    arrived_at: datetime
    due_at: datetime
    target_minutes: int
    clock_started_at: datetime  # the arrival, or the next opening when it arrived after hours
    timezone: str  # the calendar's: where "the next business day" is counted
    source: PromiseSource
    reader_timezone: str | None = None  # the customer's (their organization's); None: the calendar's
    closed_days: tuple[tuple[date, str], ...] = ()  # holidays between arrival and clock start

    @property
    def after_hours(self) -> bool:
        return self.clock_started_at - self.arrived_at > _SAME_INSTANT

    @property
    def next_business_day(self) -> bool:
        """Counting starts on a later local day than the ticket arrived (an evening, a
        weekend, a public holiday)."""
        zone = ZoneInfo(self.timezone)
        return self.clock_started_at.astimezone(zone).date() > self.arrived_at.astimezone(zone).date()

    def context(self) -> dict[str, Any]:
        """The acknowledgment template's variables for this promise, in the reader's timezone."""
        reader = self.reader_timezone or self.timezone
        return {
            "due_at": format_instant(self.due_at, reader),
            "response_target": target_in_words(self.target_minutes),
            "after_hours": self.after_hours,
            "next_business_day": self.next_business_day,
            "next_opening": format_instant(self.clock_started_at, reader),
            "closed_days": " and ".join(f"{format_day(day)} ({name})" for day, name in self.closed_days)
            if self.after_hours
            else "",
        }


def office_hours_promise(
    arrived_at: datetime, hours: OfficeHours, business_hours: int, *, reader_timezone: str | None = None
) -> Promise:
    """notifier's own estimate: ``business_hours`` of ``hours`` from the arrival."""
    minutes = business_hours * 60
    opening = next_opening(arrived_at, hours)
    zone = ZoneInfo(hours.timezone)
    first, last = arrived_at.astimezone(zone).date(), opening.astimezone(zone).date()
    days = [first + timedelta(days=n) for n in range(min((last - first).days + 1, 31))]
    return Promise(
        arrived_at=arrived_at,
        due_at=add_business_minutes(arrived_at, minutes, hours),
        target_minutes=minutes,
        clock_started_at=opening,
        timezone=hours.timezone,
        source=PromiseSource.OFFICE_HOURS,
        reader_timezone=reader_timezone,
        closed_days=tuple((day, name) for day in days if (name := hours.closure_name(day)) is not None),
    )


def triage_promise(
    arrived_at: datetime,
    *,
    due_at: datetime,
    timezone: str,
    target_minutes: int | None,
    clock_started_at: datetime | None,
    fallback: OfficeHours,
    fallback_business_hours: int,
    reader_timezone: str | None = None,
    closed_days: Sequence[tuple[date, str]] = (),
) -> Promise:
    """Triage's decision as a promise. A decision from a triage that did not yet send its
    target or clock start takes those from notifier's own office hours (``fallback``, in
    triage's timezone)."""
    return Promise(
        arrived_at=arrived_at,
        due_at=due_at,
        target_minutes=target_minutes or fallback_business_hours * 60,
        clock_started_at=clock_started_at or next_opening(arrived_at, fallback),
        timezone=timezone,
        source=PromiseSource.TRIAGE,
        reader_timezone=reader_timezone,
        closed_days=tuple(closed_days),
    )
