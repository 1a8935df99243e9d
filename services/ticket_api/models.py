"""ticket_api's tables and its API schemas (Create / Update / Public per resource)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID
from zoneinfo import available_timezones

from pydantic import ConfigDict, field_validator
from sqlalchemy import JSON, Column, Index, String, Text
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from shared.clock import utcnow
from shared.consumer import processed_event_table
from shared.db import UtcDateTime
from shared.email_address import EmailAddress
from shared.ids import new_id
from shared.outbox import outbox_table
from shared.vocabulary import Impact, Priority, SupportTier, TicketStatus, Urgency

__all__ = ["TicketStatus"]


class Base(SQLModel, registry=registry()):
    """Every ticket_api table hangs off this metadata (and no other service's)."""


metadata = Base.metadata
outbox = outbox_table(metadata)
processed_event = processed_event_table(metadata)


def timestamp(**kwargs: Any) -> Any:
    return Field(default_factory=utcnow, sa_type=UtcDateTime, nullable=False, **kwargs)


class Strict(SQLModel):
    """Request bodies: unknown fields are an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]


def example(body: dict[str, Any]) -> ConfigDict:
    """A request body's configuration: strict, with the example the OpenAPI shows."""
    return ConfigDict(extra="forbid", json_schema_extra={"examples": [body]})


_TIMEZONES = frozenset(available_timezones())


def check_timezone(value: str) -> str:
    if value not in _TIMEZONES:
        raise ValueError(f"unknown IANA timezone {value!r} (e.g. 'America/Chicago')")
    return value


# --- enums -------------------------------------------------------------------------------


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


class AgentRole(StrEnum):
    AGENT = "agent"
    ADMIN = "admin"


def enum_column(length: int = 32) -> Any:
    return Field(sa_type=String(length), nullable=False)


# --- organizations -----------------------------------------------------------------------


class OrganizationBase(SQLModel):
    name: str = Field(min_length=1, max_length=200)
    support_tier: SupportTier = Field(sa_type=String(16), nullable=False)
    timezone: str = Field(default="America/Chicago", max_length=64)


class Organization(OrganizationBase, Base, table=True):
    id: UUID = Field(default_factory=new_id, primary_key=True)
    sla_signed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    created_at: datetime = timestamp()
    updated_at: datetime = timestamp()


class OrganizationDomain(Base, table=True):
    """An email domain whose senders belong to an organization (one organization a domain)."""

    __tablename__ = "organization_domain"
    domain: str = Field(primary_key=True, max_length=253)
    organization_id: UUID = Field(foreign_key="organization.id", index=True, ondelete="CASCADE")


def _domains(value: list[str]) -> list[str]:
    cleaned = sorted({d.strip().lower().lstrip("@") for d in value if d.strip()})
    for domain in cleaned:
        if "." not in domain or " " in domain or "@" in domain or len(domain) > 253:
            raise ValueError(f"{domain!r} is not an email domain (e.g. 'acme.test')")
    return cleaned


class OrganizationCreate(OrganizationBase, Strict):
    model_config = example(  # type: ignore[assignment]
        {
            "name": "Acme Corp",
            "support_tier": "hourly",
            "timezone": "America/Chicago",
            "email_domains": ["acme.test"],
            "sla_signed": False,
        }
    )
    email_domains: list[str] = Field(default_factory=list, max_length=50)
    sla_signed: bool = False

    _check_domains = field_validator("email_domains")(_domains)
    _check_tz = field_validator("timezone")(check_timezone)


class OrganizationUpdate(Strict):
    model_config = example({"support_tier": "agreement", "sla_signed": True})  # type: ignore[assignment]
    name: str | None = Field(default=None, min_length=1, max_length=200)
    support_tier: SupportTier | None = None
    timezone: str | None = None
    email_domains: list[str] | None = Field(default=None, max_length=50)
    sla_signed: bool | None = None

    _check_domains = field_validator("email_domains")(lambda v: None if v is None else _domains(v))
    _check_tz = field_validator("timezone")(lambda v: None if v is None else check_timezone(v))


class OrganizationPublic(OrganizationBase):
    id: UUID
    sla_signed: bool
    sla_signed_at: datetime | None
    email_domains: list[str]
    created_at: datetime
    updated_at: datetime


# --- contacts ----------------------------------------------------------------------------


class Contact(Base, table=True):
    id: UUID = Field(default_factory=new_id, primary_key=True)
    email: str = Field(max_length=320, unique=True)
    name: str | None = Field(default=None, max_length=200)
    organization_id: UUID | None = Field(default=None, foreign_key="organization.id", index=True)
    created_at: datetime = timestamp()
    updated_at: datetime = timestamp()


class ContactRefIn(Strict):
    email: EmailAddress
    name: str | None = Field(default=None, max_length=200)


class ContactCreate(ContactRefIn):
    model_config = example(  # type: ignore[assignment]
        {
            "email": "jane@acme.test",
            "name": "Jane Doe",
            "organization_id": "0194f3c2-7a10-7c3e-9d51-2b8e4f6a1c00",
        }
    )
    organization_id: UUID | None = None


class ContactUpdate(Strict):
    model_config = example({"name": "Jane Q. Doe"})  # type: ignore[assignment]
    name: str | None = Field(default=None, max_length=200)
    organization_id: UUID | None = None


class ContactPublic(SQLModel):
    id: UUID
    email: str
    name: str | None
    organization_id: UUID | None
    created_at: datetime
    updated_at: datetime


# --- agents ------------------------------------------------------------------------------

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_WORKING_HOURS = {day: [["09:00", "17:00"]] for day in WEEKDAYS[:5]}


def check_working_hours(value: dict[str, list[list[str]]]) -> dict[str, list[list[str]]]:
    for day, spans in value.items():
        if day not in WEEKDAYS:
            raise ValueError(f"unknown weekday {day!r}; use one of {', '.join(WEEKDAYS)}")
        for span in spans:
            if len(span) != 2:
                raise ValueError(f"{day}: each span is [start, end], e.g. ['09:00', '17:00']")
            start, end = (_minutes(t) for t in span)
            if start >= end:
                raise ValueError(f"{day}: span {span[0]}-{span[1]} ends before it starts")
    return value


def _minutes(hh_mm: str) -> int:
    try:
        hours, minutes = (int(part) for part in hh_mm.split(":"))
    except ValueError:
        raise ValueError(f"{hh_mm!r} is not a time of day like '09:00'") from None
    if not (0 <= hours <= 24 and 0 <= minutes < 60) or (hours == 24 and minutes):
        raise ValueError(f"{hh_mm!r} is not a time of day like '09:00'")
    return hours * 60 + minutes


class AgentBase(SQLModel):
    email: EmailAddress = Field(max_length=320, sa_type=String(320), unique=True)
    name: str = Field(min_length=1, max_length=200)
    role: AgentRole = Field(default=AgentRole.AGENT, sa_type=String(16), nullable=False)
    skills: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    timezone: str = Field(default="America/Chicago", max_length=64)
    working_hours: dict[str, list[list[str]]] = Field(
        default_factory=lambda: dict(DEFAULT_WORKING_HOURS), sa_column=Column(JSON, nullable=False)
    )
    capacity: int = Field(default=10, ge=0, le=1000)
    active: bool = True
    scheduling_url: str | None = Field(
        default=None, max_length=500, description="an external booking page (Calendly, Bookings …), if any"
    )


def check_url(value: str | None) -> str | None:
    if value is not None and not value.startswith(("https://", "http://")):
        raise ValueError("give a full http(s) URL")
    return value


class Agent(AgentBase, Base, table=True):
    id: UUID = Field(default_factory=new_id, primary_key=True)
    password_hash: str | None = Field(default=None, max_length=200)
    created_at: datetime = timestamp()
    updated_at: datetime = timestamp()


class AgentCreate(AgentBase, Strict):
    model_config = example(  # type: ignore[assignment]
        {
            "email": "alice@helpdesk.test",
            "name": "Alice Consultant",
            "role": "agent",
            "skills": ["printers", "networks"],
            "timezone": "America/Chicago",
            "working_hours": {"mon": [["09:00", "17:00"]], "tue": [["09:00", "12:00"], ["13:00", "17:00"]]},
            "capacity": 12,
        }
    )
    skills: list[str] = Field(default_factory=list, max_length=50)

    _check_tz = field_validator("timezone")(check_timezone)
    _check_hours = field_validator("working_hours")(check_working_hours)
    _check_url = field_validator("scheduling_url")(check_url)


class AgentUpdate(Strict):
    model_config = example({"capacity": 8, "skills": ["printers"]})  # type: ignore[assignment]
    name: str | None = Field(default=None, min_length=1, max_length=200)
    role: AgentRole | None = None
    skills: list[str] | None = Field(default=None, max_length=50)
    timezone: str | None = None
    working_hours: dict[str, list[list[str]]] | None = None
    capacity: int | None = Field(default=None, ge=0, le=1000)
    active: bool | None = None
    scheduling_url: str | None = Field(default=None, max_length=500)

    _check_tz = field_validator("timezone")(lambda v: None if v is None else check_timezone(v))
    _check_hours = field_validator("working_hours")(lambda v: None if v is None else check_working_hours(v))
    _check_url = field_validator("scheduling_url")(check_url)


class AgentPublic(AgentBase):
    id: UUID
    created_at: datetime
    updated_at: datetime


# --- tickets -----------------------------------------------------------------------------


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


# --- messages ----------------------------------------------------------------------------


class Message(Base, table=True):
    __table_args__ = (Index("ix_message_ticket_id_id", "ticket_id", "id"),)

    id: UUID = Field(default_factory=new_id, primary_key=True)
    ticket_id: UUID = Field(foreign_key="ticket.id")
    visibility: Visibility = Field(sa_type=String(16), nullable=False)
    author_kind: AuthorKind = Field(sa_type=String(16), nullable=False)
    author_id: UUID | None = None
    body: str = Field(sa_type=Text)
    created_at: datetime = timestamp()


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


# --- time entries ------------------------------------------------------------------------


def require_aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("give a timezone, e.g. 2026-11-24T15:00:00Z")
    return value


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


# --- audit trail -------------------------------------------------------------------------


class AuditEntry(Base, table=True):
    __tablename__ = "audit_entry"
    __table_args__ = (Index("ix_audit_entry_entity", "entity_type", "entity_id", "id"),)

    id: UUID = Field(default_factory=new_id, primary_key=True)
    entity_type: str = Field(max_length=32)
    entity_id: UUID
    action: str = Field(max_length=64)
    actor: str = Field(max_length=100)
    changes: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    request_id: str | None = Field(default=None, max_length=128)
    created_at: datetime = timestamp()


class AuditEntryPublic(SQLModel):
    id: UUID
    entity_type: str
    entity_id: UUID
    action: str
    actor: str
    changes: dict[str, Any]
    request_id: str | None
    created_at: datetime


# --- idempotency and API clients -----------------------------------------------------------


class IdempotencyRecord(Base, table=True):
    """A POST answered under an ``Idempotency-Key``, replayed for the same caller and key."""

    __tablename__ = "idempotency_record"
    caller: str = Field(primary_key=True, max_length=100)
    key: str = Field(primary_key=True, max_length=255)
    request_hash: str = Field(max_length=64)
    response_status: int
    response_body: str = Field(sa_type=Text)
    created_at: datetime = timestamp(index=True)


class ApiClientKind(StrEnum):
    PORTAL = "portal"
    SERVICE = "service"


PORTAL_SCOPES = ("tickets:read", "tickets:write", "webhooks:manage", "billing:read")


class ApiClient(Base, table=True):
    """An OAuth2 client (a third-party portal, or one of our services) using client credentials."""

    __tablename__ = "api_client"
    id: UUID = Field(default_factory=new_id, primary_key=True)
    client_id: str = Field(max_length=64, unique=True)
    name: str = Field(max_length=200)
    kind: ApiClientKind = Field(sa_type=String(16), nullable=False)
    organization_ids: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    scopes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = timestamp()
    revoked_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class ApiClientSecret(Base, table=True):
    """A client secret, stored as a SHA-256 hash (secrets are 256 random bits) with a visible
    prefix. Several may be valid at once while a rotation overlaps."""

    __tablename__ = "api_client_secret"
    id: UUID = Field(default_factory=new_id, primary_key=True)
    api_client_id: UUID = Field(foreign_key="api_client.id", index=True)
    secret_prefix: str = Field(max_length=16)
    secret_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = timestamp()
    expires_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class ApiClientCreate(Strict):
    name: str = Field(min_length=1, max_length=200)
    kind: ApiClientKind = ApiClientKind.PORTAL
    organization_ids: list[UUID] = Field(default_factory=list, max_length=1000)
    scopes: list[str] = Field(default_factory=lambda: list(PORTAL_SCOPES[:2]))

    model_config = example(  # type: ignore[assignment]
        {
            "name": "PartnerDesk portal",
            "kind": "portal",
            "organization_ids": ["0194f3c2-7a10-7c3e-9d51-2b8e4f6a1c00"],
            "scopes": ["tickets:read", "tickets:write"],
        }
    )

    @field_validator("scopes")
    @classmethod
    def _known_scopes(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(PORTAL_SCOPES))
        if unknown:
            raise ValueError(f"unknown scope(s) {', '.join(unknown)}; known: {', '.join(PORTAL_SCOPES)}")
        return sorted(set(value))


class ApiClientPublic(SQLModel):
    id: UUID
    client_id: str
    name: str
    kind: ApiClientKind
    organization_ids: list[str]
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None


class ClientSecretIssued(SQLModel):
    client_id: str
    client_secret: str = Field(description="shown once; store it now")
    secret_prefix: str
    previous_secrets_expire_at: datetime | None


class SecretRotation(Strict):
    overlap_hours: int = Field(
        default=24, ge=0, le=24 * 30, description="how long older secrets keep working"
    )

    model_config = example({"overlap_hours": 24})  # type: ignore[assignment]


class RefreshToken(Base, table=True):
    """A refresh token of an agent session (stored hashed). Each refresh replaces it; reusing a
    replaced one revokes its whole family (a stolen token is detected)."""

    __tablename__ = "refresh_token"
    id: UUID = Field(default_factory=new_id, primary_key=True)
    agent_id: UUID = Field(foreign_key="agent.id", index=True)
    family_id: UUID = Field(index=True)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = timestamp()
    expires_at: datetime = Field(sa_type=UtcDateTime, nullable=False)
    used_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class Revocation(Base, table=True):
    """What may no longer be used, kept until it would have expired anyway: one access token
    (kind ``jti``), every token a subject got up to a moment (``sub``, ``value`` that second: a
    revoked client), every access token of a session (``sid``: logout, a reused refresh token),
    a used sign-in link (``sign-in-link``, its nonce). The truth behind Redis's copy, which
    every service checks and ticket_api reloads from here when Redis lost it (revocations.py)."""

    __tablename__ = "revocation"
    kind: str = Field(max_length=16, primary_key=True)
    key: str = Field(max_length=100, primary_key=True)
    value: str = Field(max_length=32)
    expires_at: datetime = Field(sa_type=UtcDateTime, nullable=False, index=True)


class SignInCounter(Base, table=True):
    """Failed sign-ins of one subject (an account, a client, an address) in a sliding window,
    and how long it is locked; or requests of one subject in an hour (lockout.py)."""

    __tablename__ = "sign_in_counter"
    subject: str = Field(max_length=400, primary_key=True)
    count: int = Field(nullable=False)
    window_ends_at: datetime = Field(sa_type=UtcDateTime, nullable=False)
    locked_until: datetime | None = Field(default=None, sa_type=UtcDateTime)


# --- sign-in -------------------------------------------------------------------------------


class LoginRequest(Strict):
    email: EmailAddress
    password: str = Field(min_length=1, max_length=1024)

    model_config = example({"email": "alice@helpdesk.test", "password": "correct horse battery staple"})  # type: ignore[assignment]


class RefreshRequest(Strict):
    refresh_token: str = Field(min_length=10, max_length=200)

    model_config = example({"refresh_token": "hdr_8fQ…"})  # type: ignore[assignment]


class LogoutRequest(Strict):
    refresh_token: str | None = Field(default=None, max_length=200)

    model_config = example({"refresh_token": "hdr_8fQ…"})  # type: ignore[assignment]


class PasswordChange(Strict):
    password: str = Field(min_length=12, max_length=1024, description="at least 12 characters")
    current_password: str | None = Field(
        default=None, max_length=1024, description="needed when changing your own"
    )

    model_config = example({"password": "a long new passphrase", "current_password": "the old one"})  # type: ignore[assignment]


class TokenResponse(SQLModel):
    """An OAuth 2.0 token response (RFC 6749 §5.1)."""

    access_token: str
    token_type: str = "Bearer"
    expires_in: int = Field(description="seconds until the access token expires")
    scope: str | None = None
    refresh_token: str | None = None


class SignInLinkRequest(Strict):
    email: EmailAddress
    ticket_number: str | None = Field(default=None, max_length=32, description="e.g. TKT-42 (optional)")

    model_config = example({"email": "jane@acme.test", "ticket_number": "TKT-42"})  # type: ignore[assignment]


class SignInLinkRedeem(Strict):
    token: str = Field(min_length=10, max_length=4096)

    model_config = example({"token": "eyJjb250YWN0X2lkIjoi….bWFj"})  # type: ignore[assignment]


# --- appointments and call tasks --------------------------------------------------------------


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


# --- inbound email (services/ticket_api/inbound/) ------------------------------------------


class InboundKind(StrEnum):
    """What sent a message: a person, or a machine we must never answer (RFC 3834)."""

    HUMAN = "human"
    AUTO_REPLY = "auto_reply"
    BOUNCE = "bounce"
    COMPLAINT = "complaint"
    LIST = "list"
    OWN = "own"
    UNKNOWN = "unknown"


class InboundOutcome(StrEnum):
    TICKET_CREATED = "ticket_created"
    MESSAGE_ADDED = "message_added"
    TICKET_REOPENED = "ticket_reopened"
    LINKED_TICKET_CREATED = "linked_ticket_created"
    RECORDED_ON_TICKET = "recorded_on_ticket"
    STORED = "stored"
    FLAGGED = "flagged"


class InboundEmail(Base, table=True):
    """Every message that came in, kept raw whatever became of it. ``message_key`` (the
    Message-ID, or the raw bytes' digest when it has none) makes a re-delivery a no-op."""

    __tablename__ = "inbound_email"
    __table_args__ = (
        Index("ix_inbound_email_needs_review_id", "needs_review", "id"),
        Index("ix_inbound_email_ticket_id", "ticket_id"),
    )

    id: UUID = Field(default_factory=new_id, primary_key=True)
    message_key: str = Field(max_length=255, unique=True)
    raw_sha256: str = Field(max_length=64)
    # Who, subject, text and attachments: a re-used Message-ID with other content is not a redelivery.
    content_sha256: str | None = Field(default=None, max_length=64)
    raw_size_bytes: int
    raw_message: bytes  # empty once deleted after the retention period (raw_purged_at)
    raw_purged_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    received_via: str = Field(max_length=8)
    envelope_sender: str | None = Field(default=None, max_length=320)
    envelope_recipients: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    from_address: str | None = Field(default=None, max_length=320)
    from_name: str | None = Field(default=None, max_length=200)
    subject: str = Field(default="", max_length=300)
    kind: InboundKind = Field(sa_type=String(16), nullable=False)
    kind_reasons: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    outcome: InboundOutcome = Field(sa_type=String(32), nullable=False)
    matched_by: str | None = Field(default=None, max_length=32)
    ticket_id: UUID | None = Field(default=None, foreign_key="ticket.id")
    ticket_message_id: UUID | None = Field(default=None, foreign_key="message.id")
    contact_id: UUID | None = Field(default=None, foreign_key="contact.id")
    acknowledge: bool | None = None
    full_text: str = Field(default="", sa_type=Text)
    needs_review: bool = False
    review_reason: str | None = Field(default=None, sa_type=Text)
    malformed: bool = False
    defects: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    bounce_recipients: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    bounce_permanent: bool | None = None
    received_at: datetime = timestamp()


class EmailAttachment(Base, table=True):
    """A file that came with a message. The bytes live once in the content-addressed store
    (``sha256``); a refused one keeps its row with the reason and no bytes."""

    __tablename__ = "email_attachment"

    id: UUID = Field(default_factory=new_id, primary_key=True)
    inbound_email_id: UUID = Field(foreign_key="inbound_email.id", index=True)
    ticket_id: UUID | None = Field(default=None, foreign_key="ticket.id", index=True)
    visibility: Visibility = Field(default=Visibility.PUBLIC, sa_type=String(16), nullable=False)
    sha256: str | None = Field(default=None, max_length=64)
    size_bytes: int
    content_type: str = Field(max_length=127)
    filename: str = Field(max_length=255)
    inline: bool = False
    content_id: str | None = Field(default=None, max_length=255)
    refused_reason: str | None = Field(default=None, max_length=300)
    created_at: datetime = timestamp()


class EmailThread(Base, table=True):
    """A Message-ID that belongs to a ticket: mail we received (direction "in"), or, in rows from
    before our Message-IDs were checked by their MAC alone, mail we sent ("out")."""

    __tablename__ = "email_thread"

    message_id: str = Field(primary_key=True, max_length=255)
    ticket_id: UUID = Field(foreign_key="ticket.id", index=True)
    direction: str = Field(max_length=8)
    created_at: datetime = timestamp()


class TicketLink(Base, table=True):
    """``ticket_id`` follows up ``linked_ticket_id`` (a reply to a ticket closed too long ago)."""

    __tablename__ = "ticket_link"
    __table_args__ = (Index("ux_ticket_link", "ticket_id", "linked_ticket_id", "kind", unique=True),)

    id: UUID = Field(default_factory=new_id, primary_key=True)
    ticket_id: UUID = Field(foreign_key="ticket.id")
    linked_ticket_id: UUID = Field(foreign_key="ticket.id", index=True)
    kind: str = Field(max_length=32)
    created_at: datetime = timestamp()


class SlaReviewState(StrEnum):
    NEEDS_REVIEW = "needs_review"
    CONFIRMED = "confirmed"


class SlaDocumentReview(Base, table=True):
    """A PDF from an organization that has not signed its SLA: "signed SLA received — needs
    review" until an agent confirms it (then ``organization.sla_signed``)."""

    __tablename__ = "sla_document_review"

    id: UUID = Field(default_factory=new_id, primary_key=True)
    organization_id: UUID = Field(foreign_key="organization.id", index=True)
    inbound_email_id: UUID = Field(foreign_key="inbound_email.id")
    attachment_id: UUID = Field(foreign_key="email_attachment.id")
    state: SlaReviewState = Field(default=SlaReviewState.NEEDS_REVIEW, sa_type=String(16), nullable=False)
    created_at: datetime = timestamp()
    reviewed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    reviewed_by: str | None = Field(default=None, max_length=100)


class InboundEmailPublic(SQLModel):
    id: UUID
    message_key: str
    received_via: str
    from_address: str | None
    subject: str
    kind: InboundKind
    kind_reasons: list[str]
    outcome: InboundOutcome
    matched_by: str | None
    ticket_id: UUID | None
    ticket_message_id: UUID | None
    acknowledge: bool | None
    needs_review: bool
    review_reason: str | None
    malformed: bool
    bounce_recipients: list[str]
    bounce_permanent: bool | None
    received_at: datetime
    raw_purged_at: datetime | None = Field(
        default=None, description="when the raw copy was deleted (TICKET_API_INBOUND_RAW_RETENTION_DAYS)"
    )
    duplicate: bool = Field(default=False, description="true when this Message-ID had already arrived")


class EmailAttachmentPublic(SQLModel):
    id: UUID
    inbound_email_id: UUID
    ticket_id: UUID | None
    sha256: str | None
    size_bytes: int
    content_type: str
    filename: str
    inline: bool
    refused_reason: str | None
    created_at: datetime
    download_url: str | None = None


class SlaDocumentReviewPublic(SQLModel):
    id: UUID
    organization_id: UUID
    inbound_email_id: UUID
    attachment_id: UUID
    state: SlaReviewState
    created_at: datetime
    reviewed_at: datetime | None
    reviewed_by: str | None


# --- feedback ------------------------------------------------------------------------------------


class Rating(StrEnum):
    HAPPY = "happy"
    UNHAPPY = "unhappy"


class Feedback(Base, table=True):
    """The customer's satisfaction with a closed ticket: one per ticket, a later answer replaces it."""

    ticket_id: UUID = Field(foreign_key="ticket.id", primary_key=True)
    rating: Rating = Field(sa_type=String(16), nullable=False)
    comment: str = Field(default="", sa_type=Text)
    email: str = Field(max_length=320)
    created_at: datetime = timestamp()
    updated_at: datetime = timestamp()


class FeedbackPublic(SQLModel):
    ticket_id: UUID
    rating: Rating
    comment: str
    email: str
    created_at: datetime
    updated_at: datetime
