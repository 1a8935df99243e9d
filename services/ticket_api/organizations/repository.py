"""The queries of organizations, their email domains and contacts (repositories only flush)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import bindparam, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Insert
from sqlmodel import col

from services.ticket_api.organizations.models import Contact, Organization, OrganizationDomain
from services.ticket_api.tickets.models import Ticket
from shared.clock import utcnow
from shared.db import dialect_of
from shared.ids import new_id
from shared.vocabulary import TicketStatus


async def get_organization(session: AsyncSession, organization_id: UUID) -> Organization | None:
    return await session.get(Organization, organization_id)


async def list_organizations(
    session: AsyncSession, *, scope: frozenset[UUID] | None, limit: int, after: UUID | None
) -> Sequence[Organization]:
    query = select(Organization).order_by(col(Organization.id)).limit(limit)
    if scope is not None:
        query = query.where(col(Organization.id).in_(scope))
    if after is not None:
        query = query.where(col(Organization.id) > after)
    return (await session.scalars(query)).all()


async def domains_of(session: AsyncSession, organization_ids: Sequence[UUID]) -> dict[UUID, list[str]]:
    rows = await session.scalars(
        select(OrganizationDomain).where(col(OrganizationDomain.organization_id).in_(organization_ids))
    )
    result: dict[UUID, list[str]] = {oid: [] for oid in organization_ids}
    for row in rows.all():
        result[row.organization_id].append(row.domain)
    return {oid: sorted(domains) for oid, domains in result.items()}


async def owners_of_domains(session: AsyncSession, domains: Sequence[str]) -> dict[str, UUID]:
    rows = await session.execute(
        select(OrganizationDomain.domain, OrganizationDomain.organization_id).where(
            col(OrganizationDomain.domain).in_(domains)
        )
    )
    return {domain: organization_id for domain, organization_id in rows.all()}


async def replace_domains(session: AsyncSession, organization_id: UUID, domains: Sequence[str]) -> None:
    await session.execute(
        delete(OrganizationDomain).where(col(OrganizationDomain.organization_id) == organization_id)
    )
    if domains:
        await session.execute(
            insert(OrganizationDomain),
            [{"domain": domain, "organization_id": organization_id} for domain in domains],
        )


@dataclass(frozen=True)
class ContactRow:
    id: UUID
    email: str
    name: str | None
    organization_id: UUID | None


@functools.cache
def _upsert_contact(dialect_name: str) -> Insert:
    """The contact upsert, built once per dialect: a new contact joins the organization that
    owns its email's domain (parameter ``domain``); an existing one keeps its name unless it
    had none."""
    table = Contact.__table__  # type: ignore[attr-defined]
    organization_of_domain = (
        select(col(OrganizationDomain.organization_id))
        .where(col(OrganizationDomain.domain) == bindparam("domain"))
        .scalar_subquery()
    )
    dialect_insert = postgresql.insert if dialect_name == "postgresql" else sqlite.insert
    statement = dialect_insert(table).values(organization_id=organization_of_domain)
    return statement.on_conflict_do_update(
        index_elements=["email"], set_={"name": func.coalesce(table.c.name, statement.excluded.name)}
    ).returning(table.c.id, table.c.email, table.c.name, table.c.organization_id)


async def upsert_contact(session: AsyncSession, *, email: str, name: str | None) -> ContactRow:
    """The contact with ``email``, created when new (its organization matched by the email's
    domain). One round trip; an existing contact keeps its name unless it had none."""
    now = utcnow()
    values = {
        "id": new_id(),
        "email": email,
        "name": name,
        "created_at": now,
        "updated_at": now,
        "domain": email.rsplit("@", 1)[-1].lower(),
    }
    row = (await session.execute(_upsert_contact(dialect_of(session)), values)).one()
    return ContactRow(id=row.id, email=row.email, name=row.name, organization_id=row.organization_id)


async def adopt_contacts(session: AsyncSession, organization_id: UUID, domains: Sequence[str]) -> list[UUID]:
    """Put contacts without an organization whose address is in ``domains`` into it."""
    if not domains:
        return []
    matches = [col(Contact.email).endswith(f"@{domain}", autoescape=True) for domain in domains]
    result = await session.execute(
        update(Contact)
        .where(col(Contact.organization_id).is_(None), or_(*matches))
        .values(organization_id=organization_id, updated_at=utcnow())
        .returning(Contact.__table__.c.id)  # type: ignore[attr-defined]
    )
    return [row[0] for row in result]


async def adopt_open_tickets(
    session: AsyncSession, organization_id: UUID, contact_ids: Sequence[UUID]
) -> list[UUID]:
    """Open tickets of ``contact_ids`` that belong to no organization join ``organization_id``."""
    if not contact_ids:
        return []
    result = await session.execute(
        update(Ticket)
        .where(
            col(Ticket.contact_id).in_(contact_ids),
            col(Ticket.organization_id).is_(None),
            col(Ticket.status) != TicketStatus.CLOSED,
        )
        .values(organization_id=organization_id, updated_at=utcnow())
        .returning(Ticket.__table__.c.id)  # type: ignore[attr-defined]
    )
    return [row[0] for row in result]


async def get_contact(session: AsyncSession, contact_id: UUID) -> Contact | None:
    return await session.get(Contact, contact_id)


async def get_contact_by_email(session: AsyncSession, email: str) -> Contact | None:
    return (await session.scalars(select(Contact).where(col(Contact.email) == email))).first()


async def list_contacts(
    session: AsyncSession,
    *,
    scope: frozenset[UUID] | None,
    organization_id: UUID | None,
    email: str | None,
    limit: int,
    after: UUID | None,
    only: UUID | None = None,
) -> Sequence[Contact]:
    query = select(Contact).order_by(col(Contact.id)).limit(limit)
    if only is not None:
        query = query.where(col(Contact.id) == only)
    if scope is not None:
        query = query.where(col(Contact.organization_id).in_(scope))
    if organization_id is not None:
        query = query.where(col(Contact.organization_id) == organization_id)
    if email is not None:
        query = query.where(col(Contact.email) == email.lower())
    if after is not None:
        query = query.where(col(Contact.id) > after)
    return (await session.scalars(query)).all()
