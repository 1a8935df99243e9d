"""Every query ticket_api runs. Functions take the session explicitly and only flush."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import bindparam, cast, delete, exists, func, insert, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Insert
from sqlmodel import col

from services.ticket_api.models import (
    Agent,
    Appointment,
    AuditEntry,
    Contact,
    IdempotencyRecord,
    Message,
    Organization,
    OrganizationDomain,
    Priority,
    Ticket,
    TicketStatus,
    TimeEntry,
    Visibility,
    utcnow,
)
from shared.db import dialect_of
from shared.ids import new_id

TICKET_NUMBER_SEQUENCE = "ticket_number_seq"


# --- organizations -----------------------------------------------------------------------


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


# --- contacts ----------------------------------------------------------------------------


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


# --- agents ------------------------------------------------------------------------------


async def get_agent(session: AsyncSession, agent_id: UUID) -> Agent | None:
    return await session.get(Agent, agent_id)


async def get_agent_by_email(session: AsyncSession, email: str) -> Agent | None:
    return (await session.scalars(select(Agent).where(col(Agent.email) == email))).first()


async def list_agents(
    session: AsyncSession, *, skill: str | None, active: bool | None, limit: int, after: UUID | None
) -> Sequence[Agent]:
    query = select(Agent).order_by(col(Agent.id)).limit(limit)
    if active is not None:
        query = query.where(col(Agent.active) == active)
    if skill is not None:
        query = query.where(_has_skill(session, skill))
    if after is not None:
        query = query.where(col(Agent.id) > after)
    return (await session.scalars(query)).all()


def _has_skill(session: AsyncSession, skill: str) -> Any:
    """Agents whose JSON ``skills`` list contains ``skill``."""
    if dialect_of(session) == "postgresql":
        return cast(Agent.__table__.c.skills, JSONB).contains([skill])  # type: ignore[attr-defined]
    skills = func.json_each(Agent.__table__.c.skills).table_valued("value")  # type: ignore[attr-defined]
    return exists(select(literal(1)).select_from(skills).where(skills.c.value == skill))


# --- tickets -----------------------------------------------------------------------------


@functools.cache
def _insert_ticket(dialect_name: str) -> Insert:
    """The ticket INSERT that draws the next number, built once per dialect (the row comes as
    parameters)."""
    table = Ticket.__table__  # type: ignore[attr-defined]
    if dialect_name == "postgresql":
        number: Any = func.nextval(TICKET_NUMBER_SEQUENCE)
    else:
        # SQLite has one writer at a time (we BEGIN IMMEDIATE), so max + 1 cannot race.
        number = select(func.coalesce(func.max(table.c.number), 0) + 1).scalar_subquery()
    return insert(table).values(number=number).returning(table.c.number)


async def insert_ticket(session: AsyncSession, values: dict[str, Any]) -> int:
    """Insert a ticket (core statement: this is the hot path); returns its number."""
    number: int = (await session.execute(_insert_ticket(dialect_of(session)), values)).scalar_one()
    return number


async def get_ticket(session: AsyncSession, ticket_id: UUID, *, for_update: bool = False) -> Ticket | None:
    return await session.get(Ticket, ticket_id, with_for_update=for_update)


async def get_ticket_by_number(session: AsyncSession, number: int) -> Ticket | None:
    return (await session.scalars(select(Ticket).where(col(Ticket.number) == number))).first()


@dataclass(frozen=True)
class TicketScope:
    """Tickets a caller may reach: ``organizations`` None means all; ``contact_id`` narrows
    them to one contact's."""

    organizations: frozenset[UUID] | None
    contact_id: UUID | None


@dataclass(frozen=True)
class TicketFilter:
    status: Sequence[TicketStatus] = ()
    organization_id: UUID | None = None
    assignee_id: UUID | None = None
    unassigned: bool = False
    priority: Sequence[Priority] = ()
    updated_since: datetime | None = None
    contact_id: UUID | None = None


async def list_tickets(
    session: AsyncSession,
    *,
    scope: TicketScope,
    filters: TicketFilter,
    before: UUID | None,
    limit: int,
) -> Sequence[Any]:
    """Newest first (ids are time-ordered); ``before`` is the last id of the previous page.
    Rows with the ticket's columns as attributes, not ORM objects: a page is only read
    (building 50 entities cost twice the query)."""
    table = Ticket.__table__  # type: ignore[attr-defined]
    query = select(*table.c).order_by(col(Ticket.id).desc()).limit(limit)
    if scope.organizations is not None:
        query = query.where(col(Ticket.organization_id).in_(scope.organizations))
    if scope.contact_id is not None:
        query = query.where(col(Ticket.contact_id) == scope.contact_id)
    if filters.status:
        query = query.where(col(Ticket.status).in_(filters.status))
    if filters.organization_id is not None:
        query = query.where(col(Ticket.organization_id) == filters.organization_id)
    if filters.assignee_id is not None:
        query = query.where(col(Ticket.assignee_id) == filters.assignee_id)
    if filters.unassigned:
        query = query.where(col(Ticket.assignee_id).is_(None))
    if filters.priority:
        query = query.where(col(Ticket.priority).in_(filters.priority))
    if filters.updated_since is not None:
        query = query.where(col(Ticket.updated_at) >= filters.updated_since)
    if filters.contact_id is not None:
        query = query.where(col(Ticket.contact_id) == filters.contact_id)
    if before is not None:
        query = query.where(col(Ticket.id) < before)
    return (await session.execute(query)).all()


# --- messages ----------------------------------------------------------------------------


async def list_messages(
    session: AsyncSession, ticket_id: UUID, *, include_internal: bool, limit: int, after: UUID | None
) -> Sequence[Message]:
    query = select(Message).where(col(Message.ticket_id) == ticket_id).order_by(col(Message.id)).limit(limit)
    if not include_internal:
        query = query.where(col(Message.visibility) == Visibility.PUBLIC)
    if after is not None:
        query = query.where(col(Message.id) > after)
    return (await session.scalars(query)).all()


async def last_public_author(session: AsyncSession, ticket_id: UUID) -> str | None:
    """Who wrote the ticket's latest public message (``agent``, ``customer``, ``system``); None
    without one. Message ids are time-ordered (UUIDv7)."""
    query = (
        select(Message.author_kind)
        .where(col(Message.ticket_id) == ticket_id, col(Message.visibility) == Visibility.PUBLIC)
        .order_by(col(Message.id).desc())
        .limit(1)
    )
    return await session.scalar(query)


# --- time entries --------------------------------------------------------------------------


async def get_time_entry(
    session: AsyncSession, entry_id: UUID, *, for_update: bool = False
) -> TimeEntry | None:
    entry = await session.get(TimeEntry, entry_id, with_for_update=for_update)
    return None if entry is None or entry.deleted_at is not None else entry


async def list_time_entries(
    session: AsyncSession, ticket_id: UUID, *, limit: int, after: UUID | None
) -> Sequence[TimeEntry]:
    query = (
        select(TimeEntry)
        .where(col(TimeEntry.ticket_id) == ticket_id, col(TimeEntry.deleted_at).is_(None))
        .order_by(col(TimeEntry.id))
        .limit(limit)
    )
    if after is not None:
        query = query.where(col(TimeEntry.id) > after)
    return (await session.scalars(query)).all()


# --- audit -------------------------------------------------------------------------------


async def add_audit(
    session: AsyncSession,
    *,
    entity_type: str,
    entity_id: UUID,
    action: str,
    actor: str,
    changes: dict[str, Any],
    request_id: str | None,
) -> None:
    await session.execute(
        insert(AuditEntry.__table__),  # type: ignore[attr-defined]
        {
            "id": new_id(),
            "entity_type": entity_type,
            "entity_id": entity_id,
            "action": action,
            "actor": actor,
            "changes": changes,
            "request_id": request_id,
            "created_at": utcnow(),
        },
    )


async def list_audit(
    session: AsyncSession, *, entity_type: str, entity_id: UUID, limit: int
) -> Sequence[AuditEntry]:
    query = (
        select(AuditEntry)
        .where(col(AuditEntry.entity_type) == entity_type, col(AuditEntry.entity_id) == entity_id)
        .order_by(col(AuditEntry.id))
        .limit(limit)
    )
    return (await session.scalars(query)).all()


async def appointments_of(session: AsyncSession, ticket_id: UUID) -> list[Appointment]:
    """A ticket's appointments, earliest first."""
    rows = await session.scalars(
        select(Appointment)
        .where(col(Appointment.ticket_id) == ticket_id)
        .order_by(col(Appointment.starts_at))
    )
    return list(rows)


async def purge_idempotency_records(session: AsyncSession, *, older_than: datetime) -> int:
    result = await session.execute(
        delete(IdempotencyRecord).where(col(IdempotencyRecord.created_at) < older_than)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def touch(session: AsyncSession, model: type[Any], entity_id: UUID, **values: Any) -> None:
    await session.execute(update(model).where(model.id == entity_id).values(**values, updated_at=utcnow()))
