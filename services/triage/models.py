"""triage's tables: configuration, projections fed by events, SLA timers, decisions (the API's
request and response schemas are in ``schemas.py``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import JSON, Column, Index, Text, text
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from shared.consumer import processed_event_table
from shared.db import UtcDateTime, timestamp
from shared.ids import new_id
from shared.outbox import outbox_table


class Base(SQLModel, registry=registry()):
    """Every triage table hangs off this metadata (and no other service's)."""


metadata = Base.metadata
outbox = outbox_table(metadata)
processed_event = processed_event_table(metadata)

DEFAULT_CALENDAR = "default"


def optional_timestamp(**kwargs: Any) -> Any:
    return Field(default=None, sa_type=UtcDateTime, nullable=True, **kwargs)


def json_column(default_factory: Any) -> Any:
    return Field(default_factory=default_factory, sa_column=Column(JSON, nullable=False))


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
