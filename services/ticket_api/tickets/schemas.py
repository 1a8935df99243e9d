"""What the tickets' routes take and answer: tickets, messages, status changes, time entries, the
audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import field_validator
from sqlmodel import Field, SQLModel

from services.ticket_api.db import Strict, example
from services.ticket_api.organizations.schemas import ContactRefIn
from services.ticket_api.tickets.models import AuthorKind, Channel, TimeEntrySource, Visibility
from shared.vocabulary import Impact, Priority, TicketStatus, Urgency


class TicketCreate(Strict):
    contact: ContactRefIn
    subject: str = Field(min_length=1, max_length=300)
    description: str = Field(min_length=1, max_length=100_000)
    urgency: Urgency
    impact: Impact | None = Field(default=None, description="Agents and admins only (403 for others)")
    category: str | None = Field(default=None, max_length=100, description="Agents and admins only")
    channel: Channel = Channel.API

    model_config = example(  # type: ignore[assignment]
        {
            "contact": {"email": "jane@acme.test", "name": "Jane Doe"},
            "subject": "Printer offline",
            "description": "The office printer stopped answering this morning. Urgent!",
            "urgency": "high",
        }
    )


class TicketUpdate(Strict):
    model_config = example(  # type: ignore[assignment]
        {"priority": "P2", "assignee_id": "0194f3c2-7a10-7c3e-9d51-2b8e4f6a1c01", "impact": "team"}
    )
    subject: str | None = Field(default=None, min_length=1, max_length=300)
    urgency: Urgency | None = None
    impact: Impact | None = None
    category: str | None = Field(default=None, max_length=100)
    priority: Priority | None = None
    assignee_id: UUID | None = None


STAFF_ONLY_TICKET_FIELDS = frozenset({"priority", "assignee_id", "impact", "category"})


class StatusChange(Strict):
    model_config = example({"status": "pending_customer", "reason": "Asked for the printer model"})  # type: ignore[assignment]
    status: TicketStatus
    reason: str | None = Field(default=None, max_length=2000)


class TicketLinks(SQLModel):
    self: str
    messages: str
    status: str
    audit: str


class TicketPublic(SQLModel):
    id: UUID
    number: str
    subject: str
    description: str
    urgency: Urgency
    impact: Impact | None
    category: str | None
    channel: Channel
    status: TicketStatus
    priority: Priority | None
    assignee_id: UUID | None
    contact_id: UUID
    organization_id: UUID | None
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    links: TicketLinks


class MessageCreate(Strict):
    model_config = example(
        {"body": "Please restart the printer and tell us what the display shows.", "visibility": "public"}
    )  # type: ignore[assignment]
    body: str = Field(min_length=1, max_length=100_000)
    visibility: Visibility = Visibility.PUBLIC


class MessagePublic(SQLModel):
    id: UUID
    ticket_id: UUID
    visibility: Visibility
    author_kind: AuthorKind
    author_id: UUID | None
    body: str
    created_at: datetime


def require_aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("give a timezone, e.g. 2026-11-24T15:00:00Z")
    return value


class TimeEntryCreate(Strict):
    minutes: int = Field(ge=1, le=24 * 60, description="whole minutes worked")
    started_at: datetime | None = Field(default=None, description="when the work started (default: now)")
    billable: bool = True
    description: str = Field(default="", max_length=10_000)
    agent_id: UUID | None = Field(default=None, description="who worked (default: the calling agent)")
    source: TimeEntrySource = TimeEntrySource.MANUAL

    model_config = example(  # type: ignore[assignment]
        {
            "minutes": 45,
            "started_at": "2026-11-24T15:00:00Z",
            "billable": True,
            "description": "Replaced the printer's network card",
        }
    )

    _aware = field_validator("started_at")(lambda v: require_aware(v))


class TimeEntryUpdate(Strict):
    minutes: int | None = Field(default=None, ge=1, le=24 * 60)
    started_at: datetime | None = None
    billable: bool | None = None
    description: str | None = Field(default=None, max_length=10_000)

    model_config = example({"minutes": 60, "billable": False})  # type: ignore[assignment]

    _aware = field_validator("started_at")(lambda v: require_aware(v))


class TimeEntryPublic(SQLModel):
    id: UUID
    ticket_id: UUID
    agent_id: UUID
    minutes: int
    billable: bool
    started_at: datetime
    description: str
    source: TimeEntrySource
    revision: int
    created_at: datetime
    updated_at: datetime


class AuditEntryPublic(SQLModel):
    id: UUID
    entity_type: str
    entity_id: UUID
    action: str
    actor: str
    changes: dict[str, Any]
    request_id: str | None
    created_at: datetime


class TicketCounts(SQLModel):
    """How many tickets the list would hold with the same filters (the console's queue tabs)."""

    total: int
    by_status: dict[TicketStatus, int] = Field(description="every status, zero included")
    unassigned: int
    mine: int | None = Field(description="assigned to the calling agent; null for other callers")
