"""Days an office is closed all day: the public holidays of a country (and subdivision), from
the ``holidays`` package, and extra closed dates. Pure and cached.

One source for every service: triage's business calendars count no time on these days, and
ticket_api offers and accepts no appointment on them (a ticket's SLA calendar travels with
triage's decision as :class:`shared.events.SlaCalendarV1`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import holidays

DEFAULT_TIMEZONE = "America/Chicago"
DEFAULT_HOLIDAY_COUNTRY = "US"
CLOSED_DATE_NAME = "a day our office is closed"


@lru_cache(maxsize=512)
def public_holiday_names(country: str, subdivision: str | None, year: int) -> Mapping[date, str]:
    """The public holidays of one year and their names ("Thanksgiving Day"), cached."""
    return dict(holidays.country_holidays(country, subdiv=subdivision, years=year).items())


@dataclass(frozen=True)
class ClosedDays:
    """An office's closed days, as local dates of its timezone."""

    timezone: str = DEFAULT_TIMEZONE
    holiday_country: str | None = DEFAULT_HOLIDAY_COUNTRY
    holiday_subdivision: str | None = None
    closed_dates: frozenset[date] = field(default_factory=frozenset)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> ClosedDays:
        """From :meth:`as_dict` (a ticket's stored SLA calendar); the default without one."""
        if not raw:
            return cls()
        return cls(
            timezone=str(raw.get("timezone") or DEFAULT_TIMEZONE),
            holiday_country=raw.get("holiday_country"),
            holiday_subdivision=raw.get("holiday_subdivision"),
            closed_dates=frozenset(date.fromisoformat(str(d)) for d in raw.get("closed_dates") or []),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "timezone": self.timezone,
            "holiday_country": self.holiday_country,
            "holiday_subdivision": self.holiday_subdivision,
            "closed_dates": sorted(d.isoformat() for d in self.closed_dates),
        }

    def name_of(self, day: date) -> str | None:
        """The holiday's name, :data:`CLOSED_DATE_NAME` for an extra closed date, or None."""
        if self.holiday_country is not None:
            name = public_holiday_names(self.holiday_country, self.holiday_subdivision, day.year).get(day)
            if name is not None:
                return name
        return CLOSED_DATE_NAME if day in self.closed_dates else None

    def intervals(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime, str]]:
        """The closed days touching ``[start, end)``: (local midnight, next local midnight, name)."""
        zone = ZoneInfo(self.timezone)
        day, last = start.astimezone(zone).date(), end.astimezone(zone).date()
        found: list[tuple[datetime, datetime, str]] = []
        while day <= last:
            name = self.name_of(day)
            if name is not None:
                opens = datetime.combine(day, time(0, 0), zone).astimezone(UTC)
                closes = datetime.combine(day + timedelta(days=1), time(0, 0), zone).astimezone(UTC)
                found.append((opens, closes, name))
            day += timedelta(days=1)
        return found
