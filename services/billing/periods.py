"""Monthly billing periods in an organization's timezone.

A period starts at local midnight on the 1st and ends where the next one starts. Each is
stored and compared as UTC instants, so a month across a DST change is simply an hour
shorter or longer; no local wall-clock time is ever added to or subtracted from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from shared.clock import utcnow


@dataclass(frozen=True, order=True)
class Period:
    year: int
    month: int
    timezone: str

    @property
    def key(self) -> str:
        """``2026-11``: how a period is named in the ledger, invoices and the API."""
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def starts_at(self) -> datetime:
        """The first instant of the period (UTC): local midnight on the 1st."""
        return _local_midnight(self.year, self.month, 1, self.timezone)

    @property
    def ends_at(self) -> datetime:
        """The first instant after the period (UTC): the next period's start."""
        return self.next().starts_at

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def last_day(self) -> date:
        following = self.next()
        return date(following.year, following.month, 1) - timedelta(days=1)

    def next(self) -> Period:
        year, month = (self.year + 1, 1) if self.month == 12 else (self.year, self.month + 1)
        return Period(year, month, self.timezone)

    def previous(self) -> Period:
        year, month = (self.year - 1, 12) if self.month == 1 else (self.year, self.month - 1)
        return Period(year, month, self.timezone)

    def contains(self, instant: datetime) -> bool:
        return self.starts_at <= instant < self.ends_at


def _local_midnight(year: int, month: int, day: int, timezone: str) -> datetime:
    # A zone that skips midnight (a DST gap at 00:00) maps it to the first instant that does
    # exist that day, which is what "the day begins" means there.
    return datetime(year, month, day, tzinfo=ZoneInfo(timezone)).astimezone(UTC)


def period_of(instant: datetime, timezone: str) -> Period:
    """The period ``instant`` (timezone-aware) falls in, in ``timezone``."""
    if instant.tzinfo is None:
        raise ValueError("a naive datetime has no place in time; give a timezone")
    local = instant.astimezone(ZoneInfo(timezone))
    period = Period(local.year, local.month, timezone)
    # Guard the one ambiguous case: in a DST gap at midnight, the local date of an instant
    # just before the mapped midnight still belongs to the previous month.
    if instant < period.starts_at:
        return period.previous()
    if instant >= period.ends_at:
        return period.next()
    return period


def parse_period_key(key: str, timezone: str) -> Period:
    """``2026-11`` → that period in ``timezone``; ValueError for anything else."""
    try:
        year_text, month_text = key.split("-")
        year, month = int(year_text), int(month_text)
    except ValueError:
        raise ValueError(f"{key!r} is not a period like 2026-11") from None
    if not (1 <= month <= 12 and 2000 <= year <= 9999) or len(month_text) != 2:
        raise ValueError(f"{key!r} is not a period like 2026-11")
    return Period(year, month, timezone)


def local_date(instant: datetime, timezone: str) -> date:
    """The calendar date of ``instant`` in ``timezone``."""
    return instant.astimezone(ZoneInfo(timezone)).date()


def utc_now() -> datetime:
    return utcnow()
