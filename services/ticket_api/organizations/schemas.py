"""What the organization and contact routes take and answer."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import field_validator
from sqlmodel import Field, SQLModel

from services.ticket_api.db import Strict, check_timezone, example
from services.ticket_api.organizations.models import OrganizationBase
from shared.email_address import EmailAddress
from shared.vocabulary import SupportTier


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
    billing_contact_id: UUID | None = Field(
        default=None,
        description="the contact who receives billing notices and invoices (null: the primary contact)",
    )
    primary_contact_id: UUID | None = Field(
        default=None,
        description="the organization's main contact (null: the contact of its first ticket)",
    )

    _check_domains = field_validator("email_domains")(lambda v: None if v is None else _domains(v))
    _check_tz = field_validator("timezone")(lambda v: None if v is None else check_timezone(v))


class OrganizationPublic(OrganizationBase):
    id: UUID
    sla_signed: bool
    sla_signed_at: datetime | None
    email_domains: list[str]
    billing_contact_id: UUID | None
    primary_contact_id: UUID | None
    created_at: datetime
    updated_at: datetime


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
