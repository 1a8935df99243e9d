"""The tables of organizations (with their email domains) and their contacts."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import String
from sqlmodel import Field, SQLModel

from services.ticket_api.db import Base
from shared.db import UtcDateTime, timestamp
from shared.ids import new_id
from shared.vocabulary import SupportTier


class OrganizationBase(SQLModel):
    name: str = Field(min_length=1, max_length=200)
    support_tier: SupportTier = Field(sa_type=String(16), nullable=False)
    timezone: str = Field(default="America/Chicago", max_length=64)


class Organization(OrganizationBase, Base, table=True):
    id: UUID = Field(default_factory=new_id, primary_key=True)
    sla_signed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # Who receives billing's notices and invoices (unless billing has an address of its own): the
    # billing contact, else the primary contact. Both are contacts of this organization; an
    # admin names them, and the contact of the organization's first ticket becomes the primary
    # contact until then. No foreign key: a contact belongs to an organization, and the two
    # references back would make the tables a cycle; the service keeps them consistent.
    billing_contact_id: UUID | None = Field(default=None)
    primary_contact_id: UUID | None = Field(default=None)
    created_at: datetime = timestamp()
    updated_at: datetime = timestamp()


class OrganizationDomain(Base, table=True):
    """An email domain whose senders belong to an organization (one organization a domain)."""

    __tablename__ = "organization_domain"
    domain: str = Field(primary_key=True, max_length=253)
    organization_id: UUID = Field(foreign_key="organization.id", index=True, ondelete="CASCADE")


class Contact(Base, table=True):
    id: UUID = Field(default_factory=new_id, primary_key=True)
    email: str = Field(max_length=320, unique=True)
    name: str | None = Field(default=None, max_length=200)
    organization_id: UUID | None = Field(default=None, foreign_key="organization.id", index=True)
    created_at: datetime = timestamp()
    updated_at: datetime = timestamp()
