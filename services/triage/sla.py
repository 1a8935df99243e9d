"""SLA policies (targets per support tier x priority) and the maths of an SLA timer.

A timer counts business minutes of its calendar from the ticket's creation (a ticket logged
after hours starts counting at the next opening, which business-time maths gives for free).
It pauses while the ticket waits on the customer; the paused business minutes are added to
the target, so ``due_at = started_at + (target + paused)`` in business time. Timers are data
(started_at, paused_at, paused minutes, due_at, warn_at), so the watcher is a cheap query.
Also here: when a logged call counts as the first response, and why a clock starts late.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from services.triage.business_hours import (
    BusinessCalendar,
    add_business_minutes,
    business_minutes_between,
    closed_days_between,
)
from shared.vocabulary import Priority

# A year of round-the-clock minutes: anything longer is a typo, not a target.
MAX_TARGET_MINUTES = 366 * 24 * 60
DEFAULT_WARNING_SHARE = 0.8


class TargetKind(StrEnum):
    FIRST_RESPONSE = "first_response"
    RESOLUTION = "resolution"


class PolicyError(ValueError):
    """A policy configuration that cannot work (the message says what to fix)."""


@dataclass(frozen=True)
class Targets:
    first_response_minutes: int
    resolution_minutes: int

    def of(self, kind: TargetKind) -> int:
        return self.first_response_minutes if kind is TargetKind.FIRST_RESPONSE else self.resolution_minutes


DEFAULT_TARGETS: dict[Priority, Targets] = {
    Priority.P1: Targets(first_response_minutes=60, resolution_minutes=480),
    # Four business hours: the promise made in every acknowledgment.
    Priority.P2: Targets(first_response_minutes=240, resolution_minutes=3 * 480),
    Priority.P3: Targets(first_response_minutes=480, resolution_minutes=5 * 480),
    Priority.P4: Targets(first_response_minutes=2 * 480, resolution_minutes=10 * 480),
}


@dataclass(frozen=True)
class SlaPolicies:
    """Targets for every priority (``default``), optionally overridden per support tier and
    priority (``tiers``)."""

    default: Mapping[Priority, Targets]
    tiers: Mapping[str, Mapping[Priority, Targets]]

    @classmethod
    def standard(cls) -> SlaPolicies:
        return cls(DEFAULT_TARGETS, {})

    def targets_for(self, support_tier: str | None, priority: Priority) -> tuple[Targets, str]:
        """The targets and where they came from (``tier:agreement`` or ``default``)."""
        if support_tier and priority in self.tiers.get(support_tier, {}):
            return self.tiers[support_tier][priority], f"tier:{support_tier}"
        return self.default[priority], "default"

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SlaPolicies:
        """``{"default": {"P1": {"first_response_minutes": 60, "resolution_minutes": 480}, ...},
        "tiers": {"agreement": {"P1": {...}}}}``; raises :class:`PolicyError`."""
        unknown = sorted(set(config) - {"default", "tiers"})
        if unknown:
            raise PolicyError(f"unknown policy section(s) {', '.join(map(repr, unknown))}")
        default = _parse_table(config.get("default") or {}, "default")
        missing = [p.value for p in Priority if p not in default]
        if missing:
            raise PolicyError(f"default: targets needed for every priority; missing {', '.join(missing)}")
        tiers = {
            str(tier): _parse_table(table, f"tiers.{tier}")
            for tier, table in (config.get("tiers") or {}).items()
        }
        return cls(default, tiers)

    def to_config(self) -> dict[str, Any]:
        return {
            "default": _table_config(self.default),
            "tiers": {tier: _table_config(table) for tier, table in self.tiers.items()},
        }


def _parse_table(table: Mapping[str, Any], where: str) -> dict[Priority, Targets]:
    parsed: dict[Priority, Targets] = {}
    for name, targets in table.items():
        try:
            priority = Priority(name)
        except ValueError:
            raise PolicyError(f"{where}: unknown priority {name!r}; use P1, P2, P3 or P4") from None
        values: dict[str, int] = {}
        for field in ("first_response_minutes", "resolution_minutes"):
            value = targets.get(field) if isinstance(targets, Mapping) else None
            if isinstance(value, bool) or not isinstance(value, int):
                raise PolicyError(f"{where}.{name}.{field}: a whole number of business minutes is needed")
            if value <= 0:
                raise PolicyError(f"{where}.{name}.{field}: {value} is not a positive number of minutes")
            if value > MAX_TARGET_MINUTES:
                raise PolicyError(f"{where}.{name}.{field}: {value} is more than a year of minutes")
            values[field] = value
        extra = sorted(set(targets) - set(values))
        if extra:
            raise PolicyError(f"{where}.{name}: unknown field(s) {', '.join(map(repr, extra))}")
        if values["resolution_minutes"] < values["first_response_minutes"]:
            raise PolicyError(f"{where}.{name}: resolution target is shorter than the first-response target")
        parsed[priority] = Targets(**values)
    return parsed


def _table_config(table: Mapping[Priority, Targets]) -> dict[str, dict[str, int]]:
    return {
        p.value: {
            "first_response_minutes": t.first_response_minutes,
            "resolution_minutes": t.resolution_minutes,
        }
        for p, t in sorted(table.items())
    }


# --- timers ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timer:
    """One SLA target being counted for one ticket."""

    target_minutes: int
    started_at: datetime
    paused_at: datetime | None = None
    paused_minutes: float = 0.0

    @property
    def is_paused(self) -> bool:
        return self.paused_at is not None

    def due_at(self, calendar: BusinessCalendar) -> datetime | None:
        """When the target is reached; unknown (None) while paused."""
        return self.point_at(self.target_minutes, calendar)

    def warn_at(self, calendar: BusinessCalendar, share: float) -> datetime | None:
        """When ``share`` of the target has been used; None while paused."""
        return self.point_at(self.target_minutes * share, calendar)

    def point_at(self, minutes: float, calendar: BusinessCalendar) -> datetime | None:
        if self.paused_at is not None:
            return None
        return add_business_minutes(self.started_at, minutes + self.paused_minutes, calendar)

    def elapsed_minutes(self, now: datetime, calendar: BusinessCalendar) -> float:
        """Business minutes counted so far (pauses excluded)."""
        until = self.paused_at if self.paused_at is not None else now
        return max(business_minutes_between(self.started_at, until, calendar) - self.paused_minutes, 0.0)

    def remaining_minutes(self, now: datetime, calendar: BusinessCalendar) -> float:
        """Business minutes left before the target (negative once breached)."""
        return self.target_minutes - self.elapsed_minutes(now, calendar)

    def pause(self, at: datetime) -> Timer:
        """Stop counting from ``at`` (no-op when already paused)."""
        if self.paused_at is not None:
            return self
        return replace(self, paused_at=max(at, self.started_at))

    def resume(self, at: datetime, calendar: BusinessCalendar) -> Timer:
        """Count again from ``at``; the business minutes paused are added to the target."""
        if self.paused_at is None:
            return self
        paused = business_minutes_between(self.paused_at, at, calendar)
        return replace(self, paused_at=None, paused_minutes=self.paused_minutes + paused)

    def retarget(self, target_minutes: int) -> Timer:
        return replace(self, target_minutes=target_minutes)


def check_warning_share(share: float) -> float:
    if not 0 < share < 1:
        raise PolicyError("the warning share must be between 0 and 1 (e.g. 0.8 for 80%)")
    return share


def call_response_at(
    started_at: datetime, logged_at: datetime, created_at: datetime, due_at: datetime | None
) -> datetime:
    """When a logged call answered the ticket: its start, if it started while the ticket existed
    and was logged before the first response was due (or no due time is known); otherwise the
    moment it was logged."""
    if created_at <= started_at <= logged_at and (due_at is None or logged_at <= due_at):
        return started_at
    return logged_at


def clock_start_reason(
    arrived_at: datetime, clock_started_at: datetime, calendar: BusinessCalendar
) -> str | None:
    """Why counting starts after the arrival: the closed days' names, or after hours; None
    when it starts at the arrival."""
    if clock_started_at <= arrived_at:
        return None
    closed = closed_days_between(arrived_at, clock_started_at, calendar)
    if not closed:
        return "outside office hours"
    return "; ".join(f"{day.isoformat()}: {name}" for day, name in closed)
