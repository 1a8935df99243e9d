"""The event contract between services: envelope, versioned payloads, and the routing table.

Producers build events with :func:`new_event`; consumers read ``event.data`` back through
:func:`payload_of`, which validates it against the payload model for ``(type, version)``.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from shared.clock import utcnow
from shared.email_address import EmailAddress
from shared.ids import new_id


class Service(StrEnum):
    TICKET_API = "ticket_api"
    TRIAGE = "triage"
    NOTIFIER = "notifier"
    BILLING = "billing"


class EventType(StrEnum):
    TICKET_CREATED = "ticket.created"
    TICKET_UPDATED = "ticket.updated"
    TICKET_MESSAGE_ADDED = "ticket.message_added"
    TICKET_STATUS_CHANGED = "ticket.status_changed"
    TICKET_CLOSED = "ticket.closed"
    ORGANIZATION_CREATED = "organization.created"
    ORGANIZATION_UPDATED = "organization.updated"
    ORGANIZATION_SLA_SIGNED = "organization.sla_signed"
    AGENT_CREATED = "agent.created"
    AGENT_UPDATED = "agent.updated"
    TIME_ENTRY_LOGGED = "time_entry.logged"
    TIME_ENTRY_UPDATED = "time_entry.updated"
    TIME_ENTRY_DELETED = "time_entry.deleted"
    TICKET_TRIAGED = "ticket.triaged"
    SLA_WARNING = "sla.warning"
    SLA_BREACHED = "sla.breached"
    INVOICE_ISSUED = "invoice.issued"
    ALLOWANCE_THRESHOLD_REACHED = "allowance.threshold_reached"
    BLOCK_LOW = "block.low"
    BLOCK_EXHAUSTED = "block.exhausted"
    CUSTOMER_SIGN_IN_REQUESTED = "customer.sign_in_requested"
    EMAIL_BOUNCED = "email.bounced"
    EMAIL_ATTACHMENTS_REFUSED = "email.attachments_refused"
    APPOINTMENT_BOOKED = "appointment.booked"
    APPOINTMENT_RESCHEDULED = "appointment.rescheduled"
    APPOINTMENT_CANCELLED = "appointment.cancelled"
    FEEDBACK_RECEIVED = "feedback.received"


# ONE routing table: which services receive which event. Producers never name consumers.
ROUTES: dict[EventType, tuple[Service, ...]] = {
    EventType.TICKET_CREATED: (Service.TRIAGE, Service.NOTIFIER),
    EventType.TICKET_UPDATED: (Service.TRIAGE, Service.NOTIFIER),
    EventType.TICKET_MESSAGE_ADDED: (Service.TRIAGE, Service.NOTIFIER),
    EventType.TICKET_STATUS_CHANGED: (Service.TRIAGE, Service.NOTIFIER, Service.BILLING),
    EventType.TICKET_CLOSED: (Service.TRIAGE, Service.NOTIFIER, Service.BILLING),
    EventType.ORGANIZATION_CREATED: (Service.TRIAGE, Service.BILLING),
    EventType.ORGANIZATION_UPDATED: (Service.TRIAGE, Service.BILLING),
    EventType.ORGANIZATION_SLA_SIGNED: (Service.TRIAGE, Service.NOTIFIER, Service.BILLING),
    EventType.AGENT_CREATED: (Service.TRIAGE, Service.NOTIFIER),
    EventType.AGENT_UPDATED: (Service.TRIAGE, Service.NOTIFIER),
    EventType.TIME_ENTRY_LOGGED: (Service.BILLING, Service.TRIAGE),
    EventType.TIME_ENTRY_UPDATED: (Service.BILLING,),
    EventType.TIME_ENTRY_DELETED: (Service.BILLING, Service.TRIAGE),
    EventType.TICKET_TRIAGED: (Service.TICKET_API, Service.NOTIFIER),
    EventType.SLA_WARNING: (Service.NOTIFIER,),
    EventType.SLA_BREACHED: (Service.TICKET_API, Service.NOTIFIER),
    EventType.INVOICE_ISSUED: (Service.NOTIFIER,),
    EventType.ALLOWANCE_THRESHOLD_REACHED: (Service.NOTIFIER,),
    EventType.BLOCK_LOW: (Service.NOTIFIER,),
    EventType.BLOCK_EXHAUSTED: (Service.NOTIFIER,),
    EventType.CUSTOMER_SIGN_IN_REQUESTED: (Service.NOTIFIER,),
    EventType.EMAIL_BOUNCED: (Service.NOTIFIER,),
    EventType.EMAIL_ATTACHMENTS_REFUSED: (Service.NOTIFIER,),
    EventType.APPOINTMENT_BOOKED: (Service.NOTIFIER,),
    EventType.APPOINTMENT_RESCHEDULED: (Service.NOTIFIER,),
    EventType.APPOINTMENT_CANCELLED: (Service.NOTIFIER,),
    EventType.FEEDBACK_RECEIVED: (Service.NOTIFIER,),
}


def subscribers(event_type: str) -> tuple[Service, ...]:
    """The services that receive ``event_type`` (empty for a type nobody consumes)."""
    try:
        return ROUTES[EventType(event_type)]
    except ValueError:
        return ()


def recipients(event: Event) -> tuple[Service, ...]:
    """The subscribers of ``event`` that do not know it already."""
    return tuple(service for service in subscribers(event.type) if service not in event.known_to)


class Event(BaseModel):
    """The envelope every event travels in (JSON on the wire, never pickle)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: UUID
    type: str
    version: int = 1
    occurred_at: datetime
    producer: Service
    subject: str = Field(description="what the event is about, e.g. 'ticket:<uuid>'")
    data: dict[str, Any]
    request_id: str | None = None
    known_to: tuple[Service, ...] = Field(
        default=(),
        description="services that asked for this change and hold it already: it is not delivered "
        "to them (triage's decision, applied by ticket_api, is not sent back to triage)",
        # Written only when set: a consumer not yet upgraded (rolling deploy) reads the rest.
        exclude_if=lambda known_to: not known_to,
    )


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- payloads, version 1 ------------------------------------------------------------------


class ContactRef(Payload):
    id: UUID
    email: EmailAddress
    name: str | None


class OrganizationRef(Payload):
    id: UUID
    name: str
    support_tier: str
    sla_signed: bool
    timezone: str


class TicketSnapshotV1(Payload):
    """What consumers need to know about a ticket, carried so they rarely call back."""

    ticket_id: UUID
    number: str
    subject: str
    urgency: str
    impact: str | None
    category: str | None
    channel: str
    status: str
    priority: str | None
    assignee_id: UUID | None
    contact: ContactRef
    organization: OrganizationRef | None
    created_at: datetime
    updated_at: datetime


class TicketCreatedV1(TicketSnapshotV1):
    description: str
    acknowledge: bool = Field(
        default=True,
        description="false: send no acknowledgment (this sender already got many; inbound email rate limit)",
    )
    source_message_id: str | None = Field(
        default=None,
        description="the Message-ID (<…>) of the customer's mail that opened the ticket; the "
        "acknowledgment is threaded under it (In-Reply-To/References)",
    )


class TicketUpdatedV1(TicketSnapshotV1):
    changed: dict[str, list[Any]] = Field(description="field → [old, new]")


class TicketStatusChangedV1(TicketSnapshotV1):
    from_status: str
    to_status: str


class TicketClosedV1(TicketSnapshotV1):
    closed_at: datetime


class TicketMessageAddedV1(TicketSnapshotV1):
    message_id: UUID
    visibility: str
    author_kind: str
    author_id: UUID | None
    body: str


class OrganizationV1(Payload):
    organization_id: UUID
    name: str
    support_tier: str
    sla_signed: bool
    email_domains: list[str]
    timezone: str
    # Who billing writes to when it has no address of its own (both contacts of the organization).
    billing_contact: ContactRef | None = None
    primary_contact: ContactRef | None = None


class AgentV1(Payload):
    agent_id: UUID
    email: EmailAddress
    name: str
    skills: list[str]
    timezone: str
    working_hours: dict[str, list[list[str]]]
    capacity: int
    active: bool


class TimeEntryV1(Payload):
    """The whole state of a time entry after a change. ``revision`` grows with every change
    (a deleted entry has ``deleted=True``), so a consumer can apply the newest state and
    ignore an older one that arrives late."""

    time_entry_id: UUID
    revision: int
    ticket_id: UUID
    ticket_number: str
    ticket_status: str
    organization_id: UUID | None
    agent_id: UUID
    minutes: int
    billable: bool
    started_at: datetime
    description: str
    source: str
    deleted: bool


class AgentRef(Payload):
    id: UUID
    name: str
    email: EmailAddress


class TriageBreakdownV1(Payload):
    """Why triage decided what it did (the full breakdown is readable through triage's API)."""

    urgency: str
    impact: str
    impact_source: str = Field(description="stated | inferred")
    impact_reason: str
    matrix_priority: str
    support_tier: str | None
    tier_adjustment: int
    assignment_reason: str
    continuity: bool


class ClosedDayV1(Payload):
    day: date
    name: str = Field(description="the public holiday's name, e.g. 'Thanksgiving Day'")


class SlaCalendarV1(Payload):
    """The closed days of the calendar a ticket's SLA counts in (booking honours them too)."""

    timezone: str
    holiday_country: str | None
    holiday_subdivision: str | None
    closed_dates: list[date] = Field(default_factory=list)


class TicketTriagedV1(Payload):
    """Triage's decision. ticket_api applies priority and assignee (when not null); notifier
    tells the customer and the consultant, and alerts the team when ``assignee`` is null."""

    decision_id: UUID
    trigger: str = Field(description="created | inputs_changed | on_demand")
    ticket_id: UUID
    number: str
    subject: str
    priority: str
    assignee: AgentRef | None
    assignee_changed: bool = Field(True, description="false when the decision kept the current assignee")
    unassigned_reason: str | None
    first_response_due_at: datetime | None = Field(description="null while the clock is paused")
    resolution_due_at: datetime | None = Field(description="null while the clock is paused")
    calendar_timezone: str
    call_customer: bool = Field(description="a high-priority ticket of a support-agreement customer")
    breakdown: TriageBreakdownV1
    contact: ContactRef
    organization: OrganizationRef | None
    first_response_target_minutes: int | None = Field(
        default=None, description="the first-response target in business minutes (tier x priority)"
    )
    first_response_clock_started_at: datetime | None = Field(
        default=None,
        description="when the first-response clock began to count: the ticket's arrival, or the "
        "calendar's next opening for a ticket logged after hours or on a holiday",
    )
    closed_days: list[ClosedDayV1] = Field(
        default_factory=list,
        description="the calendar's closed days (holidays) from the arrival's day to the clock's start",
    )
    calendar: SlaCalendarV1 | None = Field(default=None, description="the SLA calendar's closed days")


class SlaWarningV1(Payload):
    """A target (first_response | resolution) of a ticket is close: ``share`` of it is used."""

    ticket_id: UUID
    number: str
    subject: str
    target: str
    target_minutes: int
    due_at: datetime
    share: float
    priority: str | None
    assignee: AgentRef | None
    contact: ContactRef
    organization: OrganizationRef | None


class SlaBreachedV1(Payload):
    """A target was missed. ticket_api escalates: priority one level up (never past P1)."""

    ticket_id: UUID
    number: str
    subject: str
    target: str
    target_minutes: int
    due_at: datetime
    priority: str | None
    escalated_priority: str | None
    assignee: AgentRef | None
    contact: ContactRef
    organization: OrganizationRef | None


class InvoiceLineV1(Payload):
    description: str
    ticket_number: str | None
    minutes: int
    rate_per_hour: Decimal
    amount: Decimal


class InvoiceIssuedV1(Payload):
    """billing issued an invoice. Notifier emails it to ``bill_to_email`` (the account's billing
    address, else the ticket's contact) with the PDF fetched from ``pdf_url`` (GET with a
    service token)."""

    invoice_id: UUID
    number: str = Field(description="INV-2026-000123, gap-free per year")
    kind: str = Field(description="ticket (charged at a ticket's close) | period_overage (agreement)")
    organization_id: UUID
    organization_name: str
    ticket_id: UUID | None
    ticket_numbers: list[str]
    period: str | None = Field(description="2026-11 for a period's overage invoice")
    currency: str
    subtotal: Decimal
    tax_rate: Decimal
    tax: Decimal
    total: Decimal
    issued_at: datetime
    invoice_date: date
    due_date: date
    payment_instructions: str
    bill_to_email: EmailAddress | None
    lines: list[InvoiceLineV1]
    pdf_url: str


class AllowanceThresholdReachedV1(Payload):
    """An agreement's monthly allowance reached 80 % or 100 % (each at most once per period)."""

    organization_id: UUID
    organization_name: str
    billing_email: EmailAddress | None
    period: str
    period_starts_at: datetime
    period_ends_at: datetime
    threshold: int = Field(description="80 | 100 (percent)")
    used_minutes: int
    allowance_minutes: int
    overage_rate_per_hour: Decimal
    currency: str


class BlockBalanceV1(Payload):
    """A prepaid balance ran low (block.low) or out (block.exhausted); once each per purchase."""

    organization_id: UUID
    organization_name: str
    billing_email: EmailAddress | None
    remaining_minutes: int
    purchased_minutes: int
    low_threshold_percent: int
    newest_block_id: UUID | None
    overage_rate_per_hour: Decimal
    currency: str


class FeedbackReceivedV1(Payload):
    """A customer rated a ticket (happy or unhappy, with an optional comment); a later answer
    for the same ticket replaces the earlier one."""

    ticket_id: UUID
    number: str
    rating: str
    comment: str
    contact: ContactRef
    organization: OrganizationRef | None
    assignee_id: UUID | None


class AppointmentV1(Payload):
    """An appointment after a change: what a calendar invite needs. ``uid`` is stable;
    ``sequence`` grows with every change (iCalendar SEQUENCE); a cancelled one has
    ``status="cancelled"`` (METHOD:CANCEL)."""

    appointment_id: UUID
    uid: str
    sequence: int
    status: str
    ticket_id: UUID
    number: str
    subject: str
    starts_at: datetime
    ends_at: datetime
    timezone: str = Field(description="the customer's timezone, for the invite's wording")
    agent: AgentRef
    contact: ContactRef
    organization: OrganizationRef | None
    policy: str = Field(description="the cancellation and reschedule policy, quoted in every mail")
    late_cancellation: bool
    cancel_reason: str | None


class EmailBouncedV1(Payload):
    """A delivery failure for mail we sent: the report quotes one of our MAC-verified
    Message-IDs (a forged report cannot suppress anybody). The notifier suppresses
    ``recipients`` when ``permanent``."""

    inbound_email_id: UUID
    recipients: list[str]
    permanent: bool
    original_message_ids: list[str]
    ticket_id: UUID | None
    diagnostic: str
    received_at: datetime


class RefusedAttachmentV1(Payload):
    filename: str
    size_bytes: int
    reason: str


class EmailAttachmentsRefusedV1(Payload):
    """A person's mail was kept but some attachments were not (size/count limits). The
    notifier tells ``recipient`` which and why, threaded under their message (``in_reply_to``)."""

    inbound_email_id: UUID
    recipient: str
    recipient_name: str | None
    subject: str
    in_reply_to: str | None
    ticket_id: UUID | None
    ticket_number: str | None
    refused: list[RefusedAttachmentV1]
    max_attachment_bytes: int
    max_attachments: int
    max_total_bytes: int


class CustomerSignInRequestedV1(Payload):
    """A customer asked for a sign-in link. The notifier mails it, made with
    ``shared.sign_in_links.make_token(contact_id, nonce, expires_at)``: the event alone (without
    the secret key) cannot sign anybody in."""

    contact_id: UUID
    email: EmailAddress
    name: str | None
    nonce: str
    expires_at: datetime
    ticket_number: str | None


PAYLOADS: dict[tuple[EventType, int], type[Payload]] = {
    (EventType.TICKET_CREATED, 1): TicketCreatedV1,
    (EventType.TICKET_UPDATED, 1): TicketUpdatedV1,
    (EventType.TICKET_MESSAGE_ADDED, 1): TicketMessageAddedV1,
    (EventType.TICKET_STATUS_CHANGED, 1): TicketStatusChangedV1,
    (EventType.TICKET_CLOSED, 1): TicketClosedV1,
    (EventType.ORGANIZATION_CREATED, 1): OrganizationV1,
    (EventType.ORGANIZATION_UPDATED, 1): OrganizationV1,
    (EventType.ORGANIZATION_SLA_SIGNED, 1): OrganizationV1,
    (EventType.AGENT_CREATED, 1): AgentV1,
    (EventType.AGENT_UPDATED, 1): AgentV1,
    (EventType.TIME_ENTRY_LOGGED, 1): TimeEntryV1,
    (EventType.TIME_ENTRY_UPDATED, 1): TimeEntryV1,
    (EventType.TIME_ENTRY_DELETED, 1): TimeEntryV1,
    (EventType.TICKET_TRIAGED, 1): TicketTriagedV1,
    (EventType.SLA_WARNING, 1): SlaWarningV1,
    (EventType.SLA_BREACHED, 1): SlaBreachedV1,
    (EventType.INVOICE_ISSUED, 1): InvoiceIssuedV1,
    (EventType.ALLOWANCE_THRESHOLD_REACHED, 1): AllowanceThresholdReachedV1,
    (EventType.BLOCK_LOW, 1): BlockBalanceV1,
    (EventType.BLOCK_EXHAUSTED, 1): BlockBalanceV1,
    (EventType.CUSTOMER_SIGN_IN_REQUESTED, 1): CustomerSignInRequestedV1,
    (EventType.EMAIL_BOUNCED, 1): EmailBouncedV1,
    (EventType.EMAIL_ATTACHMENTS_REFUSED, 1): EmailAttachmentsRefusedV1,
    (EventType.APPOINTMENT_BOOKED, 1): AppointmentV1,
    (EventType.APPOINTMENT_RESCHEDULED, 1): AppointmentV1,
    (EventType.APPOINTMENT_CANCELLED, 1): AppointmentV1,
    (EventType.FEEDBACK_RECEIVED, 1): FeedbackReceivedV1,
}

P = TypeVar("P", bound=Payload)


def new_event(
    event_type: EventType,
    payload: Payload,
    *,
    producer: Service,
    subject: str,
    request_id: str | None = None,
    version: int = 1,
    known_to: tuple[Service, ...] = (),
    event_id: UUID | None = None,
) -> Event:
    """Build an event, checking the payload is the model registered for its type and version.
    Services record theirs with ``UnitOfWork.emit``; this is for tests and that recorder."""
    expected = PAYLOADS[(event_type, version)]
    if type(payload) is not expected:
        raise TypeError(f"{event_type} v{version} carries {expected.__name__}, not {type(payload).__name__}")
    return Event(
        id=event_id or new_id(),
        type=event_type.value,
        version=version,
        occurred_at=utcnow(),
        producer=producer,
        subject=subject,
        data=payload.model_dump(mode="json"),
        request_id=request_id,
        known_to=known_to,
    )


def payload_of(event: Event, model: type[P]) -> P:
    """Validate ``event.data`` as ``model`` (which must be the one registered for the event)."""
    registered = PAYLOADS.get((EventType(event.type), event.version))
    if registered is not model:
        raise TypeError(f"{event.type} v{event.version} is not a {model.__name__}")
    return model.model_validate(event.data)
