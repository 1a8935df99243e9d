from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.billing.periods import Period, parse_period_key, period_of

CHICAGO = "America/Chicago"
ZONES = [
    "America/Chicago",
    "Europe/Berlin",
    "Australia/Lord_Howe",
    "America/Asuncion",
    "Asia/Kolkata",
    "UTC",
]


def test_a_period_starts_at_local_midnight_on_the_first() -> None:
    november = Period(2026, 11, CHICAGO)
    # 1 November 2026 is the day DST ends in Chicago: midnight is still CDT (UTC-5).
    assert november.starts_at == datetime(2026, 11, 1, 5, 0, tzinfo=UTC)
    # 1 December: CST (UTC-6). November is one hour longer than 30 days.
    assert november.ends_at == datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
    assert november.ends_at - november.starts_at == timedelta(days=30, hours=1)
    assert november.key == "2026-11"


def test_the_instant_of_local_midnight_belongs_to_the_new_month() -> None:
    midnight = datetime(2026, 12, 1, 0, 0, tzinfo=ZoneInfo(CHICAGO))
    assert period_of(midnight, CHICAGO).key == "2026-12"
    assert period_of(midnight - timedelta(microseconds=1), CHICAGO).key == "2026-11"
    # In UTC it is already December 1st at 00:00 UTC, six hours earlier; in Chicago still November.
    assert period_of(datetime(2026, 12, 1, 0, 0, tzinfo=UTC), CHICAGO).key == "2026-11"


def test_march_across_the_spring_change() -> None:
    march = Period(2026, 3, CHICAGO)
    assert march.starts_at == datetime(2026, 3, 1, 6, 0, tzinfo=UTC)  # CST
    assert march.ends_at == datetime(2026, 4, 1, 5, 0, tzinfo=UTC)  # CDT
    assert march.ends_at - march.starts_at == timedelta(days=31, hours=-1)


def test_a_zone_whose_dst_gap_is_at_midnight() -> None:
    # Asunción sprang forward at local midnight on 1 October 2023 (00:00 → 01:00): the day,
    # and so the period, begins at 01:00, with no instant lost between September and October.
    zone = "America/Asuncion"
    october = Period(2023, 10, zone)
    assert october.starts_at == datetime(2023, 10, 1, 4, 0, tzinfo=UTC)  # 00:00 at UTC-4
    assert october.starts_at.astimezone(ZoneInfo(zone)).hour == 1
    assert period_of(october.starts_at - timedelta(microseconds=1), zone).key == "2023-09"
    assert period_of(october.starts_at, zone).key == "2023-10"
    assert Period(2023, 9, zone).ends_at == october.starts_at


def test_period_keys() -> None:
    assert parse_period_key("2026-02", CHICAGO) == Period(2026, 2, CHICAGO)
    for bad in ("2026-13", "2026-2", "26-02", "nope", "2026-02-01"):
        with pytest.raises(ValueError):
            parse_period_key(bad, CHICAGO)
    assert Period(2026, 12, CHICAGO).next() == Period(2027, 1, CHICAGO)
    assert Period(2026, 1, CHICAGO).previous() == Period(2025, 12, CHICAGO)
    assert Period(2027, 2, CHICAGO).last_day.day == 28


instants = st.datetimes(
    min_value=datetime(2001, 1, 1), max_value=datetime(2098, 12, 1), timezones=st.just(UTC)
)


@given(instants, st.sampled_from(ZONES))
def test_every_instant_is_in_exactly_one_period(instant: datetime, zone: str) -> None:
    period = period_of(instant, zone)
    assert period.starts_at <= instant < period.ends_at
    assert not period.previous().contains(instant)
    assert not period.next().contains(instant)
    assert period.previous().ends_at == period.starts_at  # periods tile time: no gap, no overlap
    local_start = period.starts_at.astimezone(ZoneInfo(zone))
    assert (local_start.month, local_start.day) == (period.month, 1)
    # Local midnight, or the first instant of the 1st where a DST gap swallows midnight.
    assert local_start.hour == 0 or period_of(period.starts_at - timedelta(microseconds=1), zone).month != (
        period.month
    )
