"""How every time a person reads is written (mail and pages alike): one format, in the
reader's own timezone, with the zone's abbreviation so nobody has to guess.

``Thursday, November 26, 2026 at 4:11 PM CST``; the time of day alone ``4:11 PM CST``; a day
``Thursday, November 26, 2026``. Pure functions: the caller says whose timezone it is (a
customer reads in their organization's, a consultant in their own).
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# Where an instant is read when the reader's timezone is unknown: the office's.
DEFAULT_READER_TIMEZONE = "America/Chicago"


def reader_zone(name: str | None) -> ZoneInfo:
    """The zone named, or the office's for a missing or unknown name."""
    try:
        return ZoneInfo(name or DEFAULT_READER_TIMEZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_READER_TIMEZONE)


def format_day(day: date) -> str:
    """``Thursday, November 26, 2026``."""
    return f"{day:%A}, {day:%B} {day.day}, {day.year}"


def format_clock(moment: datetime, timezone: str | None) -> str:
    """``4:11 PM CST``: the time of day in ``timezone``."""
    if moment.tzinfo is None:
        raise ValueError("a time to show needs a timezone-aware instant")
    local = moment.astimezone(reader_zone(timezone))
    return f"{local.hour % 12 or 12}:{local:%M} {'AM' if local.hour < 12 else 'PM'} {local.tzname()}"


def format_instant(moment: datetime, timezone: str | None) -> str:
    """``Thursday, November 26, 2026 at 4:11 PM CST``: the instant in ``timezone``."""
    if moment.tzinfo is None:
        raise ValueError("a time to show needs a timezone-aware instant")
    local = moment.astimezone(reader_zone(timezone))
    return f"{format_day(local.date())} at {format_clock(moment, timezone)}"
