"""The tables of scheduling: appointments (and the grid slots they reserve), agents' time off,
call tasks."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID

from sqlalchemy import Index, String
from sqlmodel import Field

from services.ticket_api.db import Base
from shared.db import UtcDateTime, timestamp
from shared.ids import new_id


class AppointmentStatus(StrEnum):
    BOOKED = "booked"
    CANCELLED = "cancelled"
    COMPLETED = "completed"


class AgentTimeOff(Base, table=True):
    """An agent's absence (holiday, training): no appointments are offered inside it."""

    __tablename__ = "agent_time_off"
    __table_args__ = (Index("ix_agent_time_off_agent_id_starts_at", "agent_id", "starts_at"),)

    id: UUID = Field(default_factory=new_id, primary_key=True)
    agent_id: UUID = Field(foreign_key="agent.id")
    starts_at: datetime = Field(sa_type=UtcDateTime, nullable=False)
    ends_at: datetime = Field(sa_type=UtcDateTime, nullable=False)
    reason: str = Field(default="", max_length=200)
    created_at: datetime = timestamp()


class Appointment(Base, table=True):
    """A meeting of a consultant and a customer about a ticket. ``sequence`` counts the changes
    calendar clients must apply (iCalendar SEQUENCE); ``uid`` never changes."""

    __table_args__ = (
        Index("ix_appointment_ticket_id", "ticket_id"),
        Index("ix_appointment_agent_id_starts_at", "agent_id", "starts_at"),
    )

    id: UUID = Field(default_factory=new_id, primary_key=True)
    ticket_id: UUID = Field(foreign_key="ticket.id")
    agent_id: UUID = Field(foreign_key="agent.id")
    contact_id: UUID = Field(foreign_key="contact.id")
    organization_id: UUID | None = Field(default=None, foreign_key="organization.id")
    starts_at: datetime = Field(sa_type=UtcDateTime, nullable=False)
    ends_at: datetime = Field(sa_type=UtcDateTime, nullable=False)
    status: AppointmentStatus = Field(default=AppointmentStatus.BOOKED, sa_type=String(16), nullable=False)
    sequence: int = 0
    booked_by: str = Field(max_length=100)
    cancelled_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    cancel_reason: str | None = Field(default=None, max_length=500)
    late_cancellation: bool = False
    created_at: datetime = timestamp()
    updated_at: datetime = timestamp()


class AppointmentSlot(Base, table=True):
    """One grid slot an appointment holds. The primary key (agent, slot) is what makes double
    booking impossible, whatever the concurrency, on every database."""

    __tablename__ = "appointment_slot"
    agent_id: UUID = Field(foreign_key="agent.id", primary_key=True)
    slot_starts_at: datetime = Field(sa_type=UtcDateTime, primary_key=True)
    appointment_id: UUID = Field(foreign_key="appointment.id", index=True)


class CallTaskStatus(StrEnum):
    OPEN = "open"
    DONE = "done"


class CallTask(Base, table=True):
    """'Call the customer': made by triage for high-priority tickets of agreement customers."""

    __tablename__ = "call_task"
    __table_args__ = (Index("ix_call_task_agent_id_status", "agent_id", "status"),)

    id: UUID = Field(default_factory=new_id, primary_key=True)
    ticket_id: UUID = Field(foreign_key="ticket.id", unique=True)
    agent_id: UUID | None = Field(default=None, foreign_key="agent.id")
    status: CallTaskStatus = Field(default=CallTaskStatus.OPEN, sa_type=String(16), nullable=False)
    outcome: str | None = Field(default=None, max_length=2000)
    created_at: datetime = timestamp()
    completed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
