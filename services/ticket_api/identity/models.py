"""The tables of who signs in: agents, API clients and their secrets, refresh tokens,
revocations and sign-in counters."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID

from sqlalchemy import JSON, Column, String
from sqlmodel import Field, SQLModel

from services.ticket_api.db import Base
from shared.db import UtcDateTime, timestamp
from shared.email_address import EmailAddress
from shared.ids import new_id


class AgentRole(StrEnum):
    AGENT = "agent"
    ADMIN = "admin"


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
