"""triage's API schemas: what its routes take and answer (the tables are in ``models.py``)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict
from sqlmodel import Field, SQLModel

from services.triage.business_hours import DEFAULT_HOLIDAY_COUNTRY, DEFAULT_TIMEZONE
from shared.vocabulary import Priority


def example(body: dict[str, Any]) -> ConfigDict:
    """A request body's configuration: strict, with the example the OpenAPI shows."""
    return ConfigDict(extra="forbid", json_schema_extra={"examples": [body]})


class CalendarConfig(SQLModel):
    """A business calendar: weekly hours in a timezone, public holidays of a country (and
    subdivision), extra closed dates."""

    model_config = example(  # type: ignore[assignment]
        {
            "timezone": "America/Chicago",
            "weekly_hours": {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")},
            "holiday_country": "US",
            "holiday_subdivision": None,
            "closed_dates": ["2026-12-24", "2026-12-31"],
        }
    )
    timezone: str = Field(default=DEFAULT_TIMEZONE, max_length=64)
    weekly_hours: dict[str, list[list[str]]]
    holiday_country: str | None = Field(default=DEFAULT_HOLIDAY_COUNTRY, max_length=8)
    holiday_subdivision: str | None = Field(default=None, max_length=16)
    closed_dates: list[date] = Field(default_factory=list, max_length=1000)


class CalendarPublic(CalendarConfig):
    model_config = ConfigDict(extra="ignore")
    name: str
    updated_at: datetime | None
    updated_by: str | None


class TargetsConfig(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]
    first_response_minutes: int
    resolution_minutes: int


class PoliciesConfig(SQLModel):
    """SLA targets in business minutes: ``default`` for every priority, ``tiers`` to override
    some priorities for a support tier."""

    model_config = example(  # type: ignore[assignment]
        {
            "default": {
                "P1": {"first_response_minutes": 60, "resolution_minutes": 480},
                "P2": {"first_response_minutes": 240, "resolution_minutes": 1440},
                "P3": {"first_response_minutes": 480, "resolution_minutes": 2400},
                "P4": {"first_response_minutes": 960, "resolution_minutes": 4800},
            },
            "tiers": {"agreement": {"P1": {"first_response_minutes": 30, "resolution_minutes": 240}}},
        }
    )
    default: dict[str, TargetsConfig]
    tiers: dict[str, dict[str, TargetsConfig]] = Field(default_factory=dict)


class MatrixConfig(SQLModel):
    """Priority per urgency x impact, and how many levels a support tier raises (+) or lowers (-) it."""

    model_config = example(  # type: ignore[assignment]
        {
            "cells": {
                "critical": {"person": "P2", "team": "P1", "organization": "P1", "many_customers": "P1"},
                "high": {"person": "P2", "team": "P2", "organization": "P1", "many_customers": "P1"},
                "medium": {"person": "P3", "team": "P3", "organization": "P2", "many_customers": "P2"},
                "low": {"person": "P4", "team": "P4", "organization": "P3", "many_customers": "P3"},
            },
            "tier_adjustments": {"agreement": 1, "hourly": 0, "block": 0},
        }
    )
    cells: dict[str, dict[str, str]]
    tier_adjustments: dict[str, int] = Field(default_factory=dict)


class OrganizationCalendar(SQLModel):
    model_config = example({"calendar": "emea"})  # type: ignore[assignment]
    calendar: str | None = Field(default=None, max_length=64, description="null: the default calendar")


class OrganizationCalendarPublic(BaseModel):
    organization_id: UUID
    calendar: str


class RetriageRequest(SQLModel):
    model_config = example({"reassign": False})  # type: ignore[assignment]
    reassign: bool = Field(
        default=False, description="choose the assignee again (otherwise a current assignee is kept)"
    )


class DecisionPublic(SQLModel):
    id: UUID
    ticket_id: UUID
    trigger: str
    actor: str
    priority: str
    assignee_id: UUID | None
    first_response_due_at: datetime | None
    resolution_due_at: datetime | None
    call_customer: bool
    breakdown: dict[str, Any]
    created_at: datetime


class TimerStatus(SQLModel):
    target: str
    state: str = Field(description="running | paused | met | met_late (after the due time) | stopped")
    target_minutes: int
    calendar: str
    started_at: datetime
    clock_started_at: datetime = Field(description="when counting began (the next opening, if after hours)")
    due_at: datetime | None
    warn_at: datetime | None
    elapsed_business_minutes: float
    remaining_business_minutes: float
    paused_at: datetime | None
    paused_business_minutes: float
    met_at: datetime | None
    breached: bool
    warning_sent_at: datetime | None
    breached_at: datetime | None


class SlaStatus(SQLModel):
    ticket_id: UUID
    number: str
    status: str
    priority: str | None
    assignee_id: UUID | None
    timers: list[TimerStatus]


class SlaPreviewRequest(SQLModel):
    """A ticket that has not been created: its organization, its priority, its arrival."""

    model_config = example(  # type: ignore[assignment]
        {
            "organization_id": "01900000-0000-7000-8000-000000000001",
            "priority": "P2",
            "at": "2026-11-26T15:00:00Z",
        }
    )
    organization_id: UUID | None = Field(
        default=None, description="null: no organization (the default calendar and targets)"
    )
    priority: Priority
    at: AwareDatetime | None = Field(default=None, description="when the ticket would arrive (default: now)")


class SlaPreview(SQLModel):
    """When first response and resolution would be due: the same computation as a ticket's."""

    organization_id: UUID | None
    priority: str
    at: datetime
    support_tier: str | None
    calendar: CalendarPublic
    targets_source: str = Field(description="tier:<tier> or default")
    first_response_minutes: int
    resolution_minutes: int
    clock_started_at: datetime = Field(description="the arrival, or the calendar's next opening")
    closed_reason: str | None = Field(
        description="why the clock starts later: after hours, or the holiday's name"
    )
    pauses_assumed: list[dict[str, Any]] = Field(
        description="none: waiting on the customer pauses both clocks and moves the due times by the "
        "business time paused"
    )
    first_response_due_at: datetime
    resolution_due_at: datetime
