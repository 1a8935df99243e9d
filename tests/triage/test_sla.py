from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.triage.business_hours import BusinessCalendar
from services.triage.sla import PolicyError, SlaPolicies, Targets, Timer, check_warning_share
from shared.vocabulary import Priority

CHICAGO = ZoneInfo("America/Chicago")
CALENDAR = BusinessCalendar()


def chicago(*args: int) -> datetime:
    return datetime(*args, tzinfo=CHICAGO)


def test_default_targets_promise_four_business_hours_for_p2() -> None:
    policies = SlaPolicies.standard()
    targets, source = policies.targets_for("hourly", Priority.P2)
    assert (targets.first_response_minutes, source) == (240, "default")


def test_a_tier_can_override_some_priorities() -> None:
    config = SlaPolicies.standard().to_config()
    config["tiers"] = {"agreement": {"P1": {"first_response_minutes": 30, "resolution_minutes": 240}}}
    policies = SlaPolicies.from_config(config)
    assert policies.targets_for("agreement", Priority.P1) == (Targets(30, 240), "tier:agreement")
    assert policies.targets_for("agreement", Priority.P2)[1] == "default"
    assert SlaPolicies.from_config(policies.to_config()) == policies


def _config(**p1: Any) -> dict[str, Any]:
    config = SlaPolicies.standard().to_config()
    config["default"]["P1"].update(p1)
    return config


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (_config(first_response_minutes=-5), "-5 is not a positive number"),
        (_config(resolution_minutes=0), "0 is not a positive number"),
        (_config(first_response_minutes=1.5), "whole number"),
        (_config(first_response_minutes=None), "whole number"),
        (_config(resolution_minutes=10**9), "more than a year"),
        (_config(first_response_minutes=600, resolution_minutes=60), "shorter than the first-response"),
        (_config(surprise=1), "unknown field"),
        ({"default": {"P1": {"first_response_minutes": 1, "resolution_minutes": 2}}}, "missing P2, P3, P4"),
        ({**_config(), "tiers": {"agreement": {"P9": {}}}}, "unknown priority 'P9'"),
        ({**_config(), "extra": {}}, "unknown policy section"),
    ],
)
def test_bad_policies_are_refused(config: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        SlaPolicies.from_config(config)


def test_warning_share_bounds() -> None:
    assert check_warning_share(0.8) == 0.8
    for bad in (0, 1, 1.5, -0.1):
        with pytest.raises(PolicyError):
            check_warning_share(bad)


def test_a_timer_started_after_hours_counts_from_the_next_morning() -> None:
    timer = Timer(240, chicago(2026, 11, 20, 18, 30))
    assert timer.due_at(CALENDAR) == chicago(2026, 11, 23, 13, 0)
    assert timer.warn_at(CALENDAR, 0.8) == chicago(2026, 11, 23, 12, 12)
    assert timer.remaining_minutes(chicago(2026, 11, 23, 10, 0), CALENDAR) == 180


def test_pausing_while_waiting_on_the_customer_moves_the_due_time() -> None:
    timer = Timer(240, chicago(2026, 11, 24, 9, 0))  # due Tuesday 13:00
    paused = timer.pause(chicago(2026, 11, 24, 10, 0))
    assert paused.due_at(CALENDAR) is None
    assert paused.elapsed_minutes(chicago(2026, 11, 24, 16, 0), CALENDAR) == 60, "no counting while paused"
    # The customer answers the next morning at 11:00: 7 + 2 business hours were paused.
    resumed = paused.resume(chicago(2026, 11, 25, 11, 0), CALENDAR)
    assert resumed.paused_minutes == 9 * 60
    assert resumed.due_at(CALENDAR) == chicago(2026, 11, 25, 14, 0)
    assert resumed.remaining_minutes(chicago(2026, 11, 25, 11, 0), CALENDAR) == 180
    assert resumed.pause(chicago(2026, 11, 25, 12, 0)).pause(
        chicago(2026, 11, 25, 15, 0)
    ).paused_at == chicago(2026, 11, 25, 12, 0), "pausing twice keeps the first pause"
    assert resumed.resume(chicago(2026, 11, 26, 9, 0), CALENDAR) == resumed, "resuming a running timer: no-op"


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 5000),
    st.lists(st.integers(0, 3000), min_size=0, max_size=6),
)
def test_due_time_equals_start_plus_target_plus_pauses(target: int, gaps: list[int]) -> None:
    """Pausing and resuming at any points: the timer reaches its target exactly when the
    business minutes counted outside pauses reach it."""
    start = chicago(2026, 11, 2, 8, 0)
    timer = Timer(target, start)
    at = start
    for index, gap in enumerate(gaps):
        at += timedelta(minutes=gap)
        timer = timer.pause(at) if index % 2 == 0 else timer.resume(at, CALENDAR)
    timer = timer.resume(at + timedelta(minutes=1), CALENDAR)
    due = timer.due_at(CALENDAR)
    assert due is not None
    if due >= at:
        assert timer.remaining_minutes(due, CALENDAR) == pytest.approx(0, abs=1e-6)
