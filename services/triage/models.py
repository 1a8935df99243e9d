"""triage's tables (configuration, projections fed by events, SLA timers, decisions) and its
API schemas."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import UUID

from pydantic import AwareDatetime, ConfigDict
from sqlalchemy import JSON, Column, Index, Text, text
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from services.triage.business_hours import DEFAULT_HOLIDAY_COUNTRY, DEFAULT_TIMEZONE
from shared.clock import utcnow
from shared.consumer import processed_event_table
from shared.db import UtcDateTime
from shared.ids import new_id
from shared.outbox import outbox_table
from shared.vocabulary import Priority


class Base(SQLModel, registry=registry()):
    """Every triage table hangs off this metadata (and no other service's)."""


metadata = Base.metadata
outbox = outbox_table(metadata)
processed_event = processed_event_table(metadata)

DEFAULT_CALENDAR = "default"


def timestamp(**kwargs: Any) -> Any:
    return Field(default_factory=utcnow, sa_type=UtcDateTime, nullable=False, **kwargs)


def optional_timestamp(**kwargs: Any) -> Any:
    return Field(default=None, sa_type=UtcDateTime, nullable=True, **kwargs)


def json_column(default_factory: Any) -> Any:
    return Field(default_factory=default_factory, sa_column=Column(JSON, nullable=False))


def example(body: dict[str, Any]) -> ConfigDict:
    """A request body's configuration: strict, with the example the OpenAPI shows."""
    return ConfigDict(extra="forbid", json_schema_extra={"examples": [body]})


# --- configuration ---------------------------------------------------------------------------


class TriageSetting(Base, table=True):
    """One piece of configuration as a validated JSON document (``matrix``, ``policies``);
    absent means the built-in default."""

    __tablename__ = "triage_setting"
    key: str = Field(primary_key=True, max_length=32)
    value: dict[str, Any] = json_column(dict)
    updated_by: str = Field(max_length=100)
    updated_at: datetime = timestamp()


class BusinessCalendarRecord(Base, table=True):
    __tablename__ = "business_calendar"
    name: str = Field(primary_key=True, max_length=64)
    timezone: str = Field(max_length=64)
    weekly_hours: dict[str, list[list[str]]] = json_column(dict)
    holiday_country: str | None = Field(default=None, max_length=8)
    holiday_subdivision: str | None = Field(default=None, max_length=16)
    closed_dates: list[str] = json_column(list)
    updated_by: str = Field(max_length=100)
    updated_at: datetime = timestamp()


# --- projections (fed by ticket_api's events only) -------------------------------------------


class AgentRecord(Base, table=True):
    """The roster: agent.created / agent.updated (newest event wins)."""

    __tablename__ = "agent"
    id: UUID = Field(primary_key=True)
    name: str = Field(max_length=200)
    email: str = Field(max_length=320)
    skills: list[str] = json_column(list)
    timezone: str = Field(max_length=64)
    working_hours: dict[str, list[list[str]]] = json_column(dict)
    capacity: int
    active: bool
    source_updated_at: datetime = Field(sa_type=UtcDateTime, nullable=False)


class OrganizationRecord(Base, table=True):
    """Support tier and timezone from organization.* events; the calendar is triage's own."""

    __tablename__ = "organization"
    id: UUID = Field(primary_key=True)
    name: str = Field(max_length=200)
    support_tier: str = Field(max_length=16)
    timezone: str = Field(max_length=64)
    calendar_name: str | None = Field(default=None, max_length=64)
    source_updated_at: datetime = Field(sa_type=UtcDateTime, nullable=False)


class TicketRecord(Base, table=True):
    """What triage knows of a ticket, from the snapshot every ticket event carries."""

    __tablename__ = "ticket"
    __table_args__ = (
        Index("ix_ticket_assignee_id_status", "assignee_id", "status"),
        Index("ix_ticket_organization_id_created_at", "organization_id", "created_at"),
        Index("ix_ticket_contact_id_created_at", "contact_id", "created_at"),
    )

    id: UUID = Field(primary_key=True)
    number: str = Field(max_length=32)
    subject: str = Field(max_length=300)
    description: str | None = Field(default=None, sa_type=Text)
    urgency: str = Field(max_length=16)
    impact: str | None = Field(default=None, max_length=32)
    category: str | None = Field(default=None, max_length=100)
    status: str = Field(max_length=32)
    priority: str | None = Field(default=None, max_length=4)
    assignee_id: UUID | None = None
    organization_id: UUID | None = None
    contact_id: UUID
    contact: dict[str, Any] = json_column(dict)
    organization: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    created_at: datetime = Field(sa_type=UtcDateTime, nullable=False)
    snapshot_updated_at: datetime = Field(sa_type=UtcDateTime, nullable=False)
    status_changed_at: datetime | None = optional_timestamp()
    # The priority triage last asked ticket_api for (decision or escalation): a ticket.updated
    # bringing exactly this back is triage's own change coming home, not a new input.
    expected_priority: str | None = Field(default=None, max_length=4)
    triaged_at: datetime | None = optional_timestamp()
    first_responded_at: datetime | None = optional_timestamp()
    # Every response that counts, by source ("message:<id>", "time_entry:<id>") -> ISO instant;
    # the first response is the earliest. A deleted one is removed and the clock reopens.
    responses: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=True))


# --- SLA timers ------------------------------------------------------------------------------


class SlaTimer(Base, table=True):
    """One target (first_response | resolution) of one ticket, as data: the watcher only
    reads rows whose ``next_alert_at`` has come."""

    __tablename__ = "sla_timer"
    __table_args__ = (
        Index(
            "ix_sla_timer_next_alert_at",
            "next_alert_at",
            postgresql_where=text("next_alert_at IS NOT NULL"),
            sqlite_where=text("next_alert_at IS NOT NULL"),
        ),
    )

    ticket_id: UUID = Field(primary_key=True, foreign_key="ticket.id")
    target: str = Field(primary_key=True, max_length=16)
    target_minutes: int
    calendar_name: str = Field(max_length=64)
    started_at: datetime = Field(sa_type=UtcDateTime, nullable=False)
    paused_at: datetime | None = optional_timestamp()
    paused_minutes: float = 0.0
    due_at: datetime | None = optional_timestamp()
    warn_at: datetime | None = optional_timestamp()
    met_at: datetime | None = optional_timestamp()
    stopped_at: datetime | None = optional_timestamp()
    warning_sent_at: datetime | None = optional_timestamp()
    breached_at: datetime | None = optional_timestamp()
    next_alert_at: datetime | None = optional_timestamp()


class SlaAlert(Base, table=True):
    """An alert sent: at most one per (ticket, target, kind), whatever runs the watcher."""

    __tablename__ = "sla_alert"
    ticket_id: UUID = Field(primary_key=True)
    target: str = Field(primary_key=True, max_length=16)
    kind: str = Field(primary_key=True, max_length=16)
    due_at: datetime = Field(sa_type=UtcDateTime, nullable=False)
    event_id: UUID
    created_at: datetime = timestamp()


class TriageDecision(Base, table=True):
    __tablename__ = "triage_decision"
    __table_args__ = (Index("ix_triage_decision_ticket_id_created_at", "ticket_id", "created_at"),)

    id: UUID = Field(default_factory=new_id, primary_key=True)
    ticket_id: UUID
    trigger: str = Field(max_length=32)
    actor: str = Field(max_length=100)
    priority: str = Field(max_length=4)
    assignee_id: UUID | None = None
    first_response_due_at: datetime | None = optional_timestamp()
    resolution_due_at: datetime | None = optional_timestamp()
    call_customer: bool = False
    breakdown: dict[str, Any] = json_column(dict)
    created_at: datetime = timestamp()


# --- API schemas -----------------------------------------------------------------------------


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
