"""What the sign-in, agent and client routes take and answer."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import field_validator
from sqlmodel import Field, SQLModel

from services.ticket_api.db import Strict, check_timezone, example
from services.ticket_api.identity.models import (
    PORTAL_SCOPES,
    AgentBase,
    AgentRole,
    ApiClientKind,
    check_url,
    check_working_hours,
)
from shared.email_address import EmailAddress


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
