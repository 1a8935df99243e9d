"""notifier's tables (the API's request and response shapes are in ``schemas.py``).

* ``notification`` — one row per (source × recipient × kind): written, with the rendered mail,
  before anything is sent; its state goes pending → sending → sent (or failed / suppressed).
* ``suppression`` — addresses a relay refused for good; nothing more is sent to them.
* ``thread_message`` — the Message-IDs sent per ticket, to chain In-Reply-To/References.
* ``ticket_view``, ``agent`` — local projections of ticket_api's events (never its tables).
* ``ticket_sla`` — triage's first-response promise per ticket (``ticket.triaged``), and whether
  its decision asked for an assignee and a call task (whom to tell is ticket_api's assignee).
* ``webhook_subscription``, ``webhook_delivery``, ``webhook_attempt`` — signed webhooks.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from sqlalchemy import JSON, Column, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from shared.consumer import processed_event_table
from shared.db import UtcDateTime, timestamp
from shared.ids import new_id
from shared.outbox import outbox_table


class Base(SQLModel, registry=registry()):
    """Every notifier table hangs off this metadata (and no other service's)."""


metadata = Base.metadata
outbox = outbox_table(metadata)
processed_event = processed_event_table(metadata)


class NotificationKind(StrEnum):
    ACKNOWLEDGMENT = "acknowledgment"
    ASSIGNMENT_CUSTOMER = "assignment_customer"
    ASSIGNMENT_CONSULTANT = "assignment_consultant"
    AGENT_REPLY = "agent_reply"
    CUSTOMER_REPLY_CONSULTANT = "customer_reply_consultant"
    STATUS_UPDATE = "status_update"
    CLOSURE = "closure"
    SLA_WARNING = "sla_warning"
    SLA_BREACH = "sla_breach"
    UNASSIGNED_ALERT = "unassigned_alert"
    SIGN_IN_LINK = "sign_in_link"
    INVOICE = "invoice"
    BILLING_NOTICE = "billing_notice"
    APPOINTMENT_CUSTOMER = "appointment_customer"
    APPOINTMENT_CONSULTANT = "appointment_consultant"
    ATTACHMENTS_REFUSED = "attachments_refused"


class DeliveryState(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    SUPPRESSED = "suppressed"
    MERGED = "merged"  # never sent: what it said went out in another mail (the acknowledgment)


# --- email -------------------------------------------------------------------------------


class Notification(Base, table=True):
    __table_args__ = (
        UniqueConstraint("dedupe_key", "recipient", "kind", name="uq_notification_once"),
        Index("ix_notification_due", "state", "next_attempt_at"),
    )

    id: UUID = Field(default_factory=new_id, primary_key=True)
    dedupe_key: str = Field(max_length=200, description="the event id, or a key that spans events")
    event_type: str = Field(max_length=100)
    kind: str = Field(sa_type=String(40), nullable=False)
    recipient: str = Field(max_length=320)
    ticket_id: UUID | None = Field(default=None, index=True)
    ticket_number: str | None = Field(default=None, max_length=32)
    organization_id: UUID | None = Field(default=None, index=True)
    from_name: str = Field(max_length=200)
    from_address: str = Field(max_length=320)
    reply_to: str | None = Field(default=None, max_length=320)
    subject: str = Field(max_length=400)
    text_body: str = Field(sa_type=Text)
    html_body: str = Field(sa_type=Text)
    message_id: str = Field(max_length=255, unique=True)
    in_reply_to: str | None = Field(default=None, max_length=255)
    reference_ids: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    auto_submitted: str | None = Field(default=None, max_length=32)
    attachments: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    state: str = Field(default=DeliveryState.PENDING, sa_type=String(16), nullable=False)
    attempts: int = 0
    next_attempt_at: datetime = timestamp()
    lease_until: datetime | None = Field(default=None, sa_type=UtcDateTime)
    last_error: str | None = Field(default=None, sa_type=Text)
    smtp_code: int | None = None
    resend_of: UUID | None = Field(default=None, foreign_key="notification.id")
    created_at: datetime = timestamp()
    updated_at: datetime = timestamp()
    sent_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class Suppression(Base, table=True):
    address: str = Field(primary_key=True, max_length=320)
    reason: str = Field(sa_type=Text)
    smtp_code: int | None = None
    notification_id: UUID | None = None
    created_at: datetime = timestamp()


class ThreadMessage(Base, table=True):
    __tablename__ = "thread_message"
    __table_args__ = (Index("ix_thread_message_ticket", "ticket_id", "created_at"),)

    id: UUID = Field(default_factory=new_id, primary_key=True)
    ticket_id: UUID
    message_id: str = Field(max_length=255, unique=True)
    created_at: datetime = timestamp()


class TicketView(Base, table=True):
    """What notifier needs to know about a ticket between events (its own projection)."""

    __tablename__ = "ticket_view"
    ticket_id: UUID = Field(primary_key=True)
    number: str = Field(max_length=32)
    subject: str = Field(max_length=300)
    contact_email: str = Field(max_length=320)
    contact_name: str | None = Field(default=None, max_length=200)
    organization_id: UUID | None = None
    timezone: str | None = Field(default=None, max_length=64)
    support_tier: str | None = Field(default=None, max_length=16)
    assignee_id: UUID | None = None
    priority: str | None = Field(default=None, max_length=8, description="as ticket_api applied it")
    status: str = Field(max_length=32)
    created_at: datetime | None = Field(
        default=None, sa_type=UtcDateTime, description="when the ticket arrived (null: projected before 0003)"
    )
    updated_at: datetime = timestamp()


class TicketSla(Base, table=True):
    """Triage's latest first-response promise for a ticket (from ``ticket.triaged``): what the
    acknowledgment and the consultant's assignment mail state. A table of its own: triage may
    decide before ticket_api's ``ticket.created`` reaches notifier, when there is no
    ``ticket_view`` row yet. Whom to mail as the consultant is never read here: that is the
    assignee ticket_api applied (``ticket_view``); ``assignee_id`` only says whether an
    assignment is still to be applied (the first mails wait for it)."""

    __tablename__ = "ticket_sla"
    ticket_id: UUID = Field(primary_key=True)
    first_response_due_at: datetime | None = Field(
        default=None, sa_type=UtcDateTime, description="null while the clock is paused"
    )
    first_response_target_minutes: int | None = None
    first_response_clock_started_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    calendar_timezone: str = Field(max_length=64)
    closed_days: list[dict[str, str]] | None = Field(
        default=None,
        sa_column=Column(JSON, nullable=True),
        description="holidays between the arrival and the clock's start: [{day, name}]",
    )
    decided_at: datetime = Field(
        sa_type=UtcDateTime, nullable=False, description="the decision event's time: the newest one wins"
    )
    assignee_id: UUID | None = Field(default=None, description="whom triage asked ticket_api to assign")
    call_customer: bool | None = Field(default=None, description="the decision opens a call task")


class AgentView(Base, table=True):
    __tablename__ = "agent"
    id: UUID = Field(primary_key=True)
    email: str = Field(max_length=320)
    name: str = Field(max_length=200)
    active: bool = True
    timezone: str | None = Field(
        default=None, max_length=64, description="where the consultant reads their mail"
    )
    updated_at: datetime = timestamp()


# --- webhooks ----------------------------------------------------------------------------


class WebhookSubscription(Base, table=True):
    __tablename__ = "webhook_subscription"
    id: UUID = Field(default_factory=new_id, primary_key=True)
    client_id: UUID = Field(index=True, description="the API client (principal) that owns it")
    organization_ids: list[str] | None = Field(
        default=None, sa_column=Column(JSON, nullable=True), description="null: every organization"
    )
    url: str = Field(max_length=2000)
    event_types: list[str] = Field(sa_column=Column(JSON, nullable=False))
    secret: str = Field(max_length=200)
    description: str | None = Field(default=None, max_length=500)
    active: bool = True
    disabled_reason: str | None = Field(default=None, max_length=500)
    created_at: datetime = timestamp()
    updated_at: datetime = timestamp()


class WebhookDelivery(Base, table=True):
    """One event for one subscription; its id is the ``webhook-id`` header (stable across retries)."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        UniqueConstraint("subscription_id", "event_id", name="uq_webhook_delivery_once"),
        Index("ix_webhook_delivery_due", "state", "next_attempt_at"),
    )

    id: UUID = Field(default_factory=new_id, primary_key=True)
    subscription_id: UUID = Field(foreign_key="webhook_subscription.id", ondelete="CASCADE", index=True)
    event_id: UUID
    event_type: str = Field(max_length=100)
    body: str = Field(sa_type=Text, description="the exact bytes signed and sent (UTF-8 JSON)")
    state: str = Field(default=DeliveryState.PENDING, sa_type=String(16), nullable=False)
    attempts: int = 0
    next_attempt_at: datetime = timestamp()
    lease_until: datetime | None = Field(default=None, sa_type=UtcDateTime)
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = timestamp()
    delivered_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class WebhookAttempt(Base, table=True):
    __tablename__ = "webhook_attempt"
    id: UUID = Field(default_factory=new_id, primary_key=True)
    delivery_id: UUID = Field(foreign_key="webhook_delivery.id", ondelete="CASCADE", index=True)
    attempt: int
    started_at: datetime = timestamp()
    duration_ms: int
    status_code: int | None = None
    error: str | None = Field(default=None, sa_type=Text)
    response_excerpt: str | None = Field(default=None, sa_type=Text)
