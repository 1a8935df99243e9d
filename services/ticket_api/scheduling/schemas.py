"""What the appointment, time-off and call-task routes take and answer."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import field_validator
from sqlmodel import Field, SQLModel

from services.ticket_api.db import Strict, example
from services.ticket_api.scheduling.models import AppointmentStatus, CallTaskStatus
from services.ticket_api.tickets.models import Visibility
from services.ticket_api.tickets.schemas import require_aware


class TimeOffCreate(Strict):
    starts_at: datetime
    ends_at: datetime
    reason: str = Field(default="", max_length=200)

    model_config = example(  # type: ignore[assignment]
        {
            "starts_at": "2026-12-24T00:00:00-06:00",
            "ends_at": "2026-12-27T00:00:00-06:00",
            "reason": "Holidays",
        }
    )

    _aware = field_validator("starts_at", "ends_at")(lambda v: require_aware(v))


class TimeOffPublic(SQLModel):
    id: UUID
    agent_id: UUID
    starts_at: datetime
    ends_at: datetime
    reason: str


class AppointmentBook(Strict):
    starts_at: datetime = Field(description="a start offered by the ticket's appointment-slots")
    duration_minutes: int = Field(default=60, ge=15, le=8 * 60)
    agent_id: UUID | None = Field(default=None, description="agents only; default: the ticket's assignee")

    model_config = example({"starts_at": "2026-12-01T10:00:00-06:00", "duration_minutes": 60})  # type: ignore[assignment]

    _aware = field_validator("starts_at")(lambda v: require_aware(v))


class AppointmentReschedule(Strict):
    starts_at: datetime
    duration_minutes: int | None = Field(default=None, ge=15, le=8 * 60)

    model_config = example({"starts_at": "2026-12-02T14:00:00-06:00"})  # type: ignore[assignment]

    _aware = field_validator("starts_at")(lambda v: require_aware(v))


class AppointmentCancel(Strict):
    reason: str | None = Field(default=None, max_length=500)

    model_config = example({"reason": "The printer works again"})  # type: ignore[assignment]


class AppointmentComplete(Strict):
    notes: str = Field(min_length=1, max_length=100_000)
    notes_visibility: Visibility = Visibility.INTERNAL
    minutes: int | None = Field(
        default=None, ge=1, le=24 * 60, description="time to log (default: the length)"
    )
    billable: bool = True

    model_config = example(  # type: ignore[assignment]
        {"notes": "Replaced the fuser; printer tested.", "notes_visibility": "public", "minutes": 75}
    )


class AppointmentPublic(SQLModel):
    id: UUID
    ticket_id: UUID
    agent_id: UUID
    contact_id: UUID
    organization_id: UUID | None
    starts_at: datetime
    ends_at: datetime
    status: AppointmentStatus
    sequence: int
    late_cancellation: bool
    cancel_reason: str | None
    policy: str


class SlotOffer(SQLModel):
    starts_at: datetime = Field(description="in the requested timezone")
    ends_at: datetime


class SlotList(SQLModel):
    agent_id: UUID
    agent_name: str
    timezone: str
    duration_minutes: int
    slots: list[SlotOffer]
    external_scheduling_url: str | None
    policy: str
    # Set when booking would be refused (no signed SLA): say so before anyone picks a time.
    not_bookable_reason: str | None = None
    consultant_timezone: str = Field(description="where the consultant works")
    note: str | None = Field(
        default=None,
        description="said plainly when the consultant works in another timezone than the times shown",
    )


class CallTaskComplete(Strict):
    outcome: str = Field(min_length=1, max_length=2000)
    minutes: int = Field(default=10, ge=1, le=24 * 60, description="the call's length, logged as time")
    billable: bool = True

    model_config = example({"outcome": "Reached Jane; restarted the spooler together", "minutes": 15})  # type: ignore[assignment]


class CallTaskPublic(SQLModel):
    id: UUID
    ticket_id: UUID
    agent_id: UUID | None
    status: CallTaskStatus
    outcome: str | None
    created_at: datetime
    completed_at: datetime | None
