"""The tickets' tables: tickets, their messages and time entries (and the words they use)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from sqlalchemy import JSON, Column, Index, String, Text
from sqlmodel import Field

from services.ticket_api.db import Base
from shared.db import UtcDateTime, timestamp
from shared.ids import new_id
from shared.vocabulary import Impact, Priority, TicketStatus, Urgency


class Channel(StrEnum):
    EMAIL = "email"
    WEB = "web"
    API = "api"
    PHONE = "phone"


class Visibility(StrEnum):
    PUBLIC = "public"
    INTERNAL = "internal"


class AuthorKind(StrEnum):
    CUSTOMER = "customer"
    AGENT = "agent"
    SYSTEM = "system"


class Ticket(Base, table=True):
    __table_args__ = (
        Index("ix_ticket_status_id", "status", "id"),
        Index("ix_ticket_organization_id_id", "organization_id", "id"),
        Index("ix_ticket_assignee_id_id", "assignee_id", "id"),
        Index("ix_ticket_priority_id", "priority", "id"),
        Index("ix_ticket_updated_at", "updated_at"),
    )

    id: UUID = Field(default_factory=new_id, primary_key=True)
    number: int = Field(unique=True)
    subject: str = Field(max_length=300)
    description: str = Field(sa_type=Text)
    urgency: Urgency = Field(sa_type=String(16), nullable=False)
    impact: Impact | None = Field(default=None, sa_type=String(32))
    category: str | None = Field(default=None, max_length=100)
    channel: Channel = Field(sa_type=String(16), nullable=False)
    status: TicketStatus = Field(default=TicketStatus.NEW, sa_type=String(32), nullable=False)
    priority: Priority | None = Field(default=None, sa_type=String(4))
    assignee_id: UUID | None = Field(default=None, foreign_key="agent.id")
    contact_id: UUID = Field(foreign_key="contact.id", index=True)
    organization_id: UUID | None = Field(default=None, foreign_key="organization.id")
    created_by: str = Field(max_length=100)
    created_at: datetime = timestamp()
    updated_at: datetime = timestamp()
    closed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # The closed days of the calendar triage counts this ticket's SLA in (its latest decision):
    # no appointment is offered or booked on them. Null until triaged: the default calendar.
    sla_calendar: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class Message(Base, table=True):
    __table_args__ = (Index("ix_message_ticket_id_id", "ticket_id", "id"),)

    id: UUID = Field(default_factory=new_id, primary_key=True)
    ticket_id: UUID = Field(foreign_key="ticket.id")
    visibility: Visibility = Field(sa_type=String(16), nullable=False)
    author_kind: AuthorKind = Field(sa_type=String(16), nullable=False)
    author_id: UUID | None = None
    body: str = Field(sa_type=Text)
    created_at: datetime = timestamp()


class TimeEntrySource(StrEnum):
    MANUAL = "manual"
    APPOINTMENT = "appointment"
    CALL = "call"


class TimeEntry(Base, table=True):
    """Time an agent spent on a ticket. Never deleted in place: ``deleted_at`` marks removal and
    ``revision`` counts changes, so billing can reverse exactly what it charged."""

    __tablename__ = "time_entry"
    __table_args__ = (Index("ix_time_entry_ticket_id_id", "ticket_id", "id"),)

    id: UUID = Field(default_factory=new_id, primary_key=True)
    ticket_id: UUID = Field(foreign_key="ticket.id")
    agent_id: UUID = Field(foreign_key="agent.id", index=True)
    minutes: int = Field(ge=1, le=24 * 60)
    billable: bool = True
    started_at: datetime = Field(sa_type=UtcDateTime, nullable=False)
    description: str = Field(default="", sa_type=Text)
    source: TimeEntrySource = Field(default=TimeEntrySource.MANUAL, sa_type=String(16), nullable=False)
    revision: int = 1
    created_at: datetime = timestamp()
    updated_at: datetime = timestamp()
    deleted_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
