"""The queries of tickets, messages, time entries and the audit trail (repositories only flush)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import case, func, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Insert
from sqlmodel import col

from services.ticket_api.db import AuditEntry
from services.ticket_api.tickets.models import Message, Ticket, TimeEntry, Visibility
from shared.clock import utcnow
from shared.db import dialect_of
from shared.ids import new_id
from shared.vocabulary import Priority, TicketStatus

TICKET_NUMBER_SEQUENCE = "ticket_number_seq"


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


def _visible_and_matching(scope: TicketScope, filters: TicketFilter) -> list[Any]:
    """The conditions of a ticket list: what the caller may reach, and the filters asked."""
    conditions: list[Any] = []
    if scope.organizations is not None:
        conditions.append(col(Ticket.organization_id).in_(scope.organizations))
    if scope.contact_id is not None:
        conditions.append(col(Ticket.contact_id) == scope.contact_id)
    if filters.status:
        conditions.append(col(Ticket.status).in_(filters.status))
    if filters.organization_id is not None:
        conditions.append(col(Ticket.organization_id) == filters.organization_id)
    if filters.assignee_id is not None:
        conditions.append(col(Ticket.assignee_id) == filters.assignee_id)
    if filters.unassigned:
        conditions.append(col(Ticket.assignee_id).is_(None))
    if filters.priority:
        conditions.append(col(Ticket.priority).in_(filters.priority))
    if filters.updated_since is not None:
        conditions.append(col(Ticket.updated_at) >= filters.updated_since)
    if filters.contact_id is not None:
        conditions.append(col(Ticket.contact_id) == filters.contact_id)
    return conditions


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
    query = query.where(*_visible_and_matching(scope, filters))
    if before is not None:
        query = query.where(col(Ticket.id) < before)
    return (await session.execute(query)).all()


@dataclass(frozen=True)
class StatusCount:
    status: TicketStatus
    total: int
    unassigned: int
    assigned_to: int


async def count_tickets(
    session: AsyncSession, *, scope: TicketScope, filters: TicketFilter, assignee_id: UUID | None
) -> list[StatusCount]:
    """How many tickets the list would hold, by status, with how many of them are unassigned
    and how many are ``assignee_id``'s: one grouped statement."""
    unassigned = func.sum(case((col(Ticket.assignee_id).is_(None), 1), else_=0))
    theirs = (
        func.sum(case((col(Ticket.assignee_id) == assignee_id, 1), else_=0)) if assignee_id else literal(0)
    )
    query = (
        select(col(Ticket.status), func.count(), unassigned, theirs)
        .where(*_visible_and_matching(scope, filters))
        .group_by(col(Ticket.status))
    )
    return [
        StatusCount(TicketStatus(status), int(total), int(free or 0), int(mine or 0))
        for status, total, free, mine in (await session.execute(query)).all()
    ]


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
