"""Every query triage runs. Functions take the session explicitly and only flush."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import case, func, select, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from services.triage.assignment import PRIORITY_WEIGHTS, AgentProfile
from services.triage.models import (
    AgentRecord,
    BusinessCalendarRecord,
    OrganizationRecord,
    SlaAlert,
    SlaTimer,
    TicketRecord,
    TriageDecision,
    TriageSetting,
)
from shared.clock import utcnow
from shared.db import dialect_of, insert_ignoring_conflicts
from shared.vocabulary import TicketStatus


def _insert(session: AsyncSession) -> Any:
    return postgresql.insert if dialect_of(session) == "postgresql" else sqlite.insert


# --- configuration ---------------------------------------------------------------------------


async def get_settings(session: AsyncSession) -> dict[str, dict[str, Any]]:
    """Every stored piece of configuration (a handful of rows), by key."""
    rows = await session.execute(select(col(TriageSetting.key), col(TriageSetting.value)))
    return {key: value for key, value in rows.all()}


async def save_setting(session: AsyncSession, key: str, value: dict[str, Any], actor: str) -> TriageSetting:
    setting = await session.get(TriageSetting, key, with_for_update=True)
    if setting is None:
        setting = TriageSetting(key=key, value=value, updated_by=actor)
        session.add(setting)
    else:
        setting.value, setting.updated_by, setting.updated_at = value, actor, utcnow()
    await session.flush()
    return setting


async def get_calendar(session: AsyncSession, name: str) -> BusinessCalendarRecord | None:
    return await session.get(BusinessCalendarRecord, name)


async def list_calendars(session: AsyncSession) -> Sequence[BusinessCalendarRecord]:
    return (
        await session.scalars(select(BusinessCalendarRecord).order_by(col(BusinessCalendarRecord.name)))
    ).all()


async def save_calendar(session: AsyncSession, name: str, values: dict[str, Any]) -> BusinessCalendarRecord:
    record = await session.get(BusinessCalendarRecord, name, with_for_update=True)
    if record is None:
        record = BusinessCalendarRecord(name=name, **values)
        session.add(record)
    else:
        for key, value in values.items():
            setattr(record, key, value)
        record.updated_at = utcnow()
    await session.flush()
    return record


# --- projections -----------------------------------------------------------------------------


async def upsert_newer(session: AsyncSession, model: type[Any], values: dict[str, Any]) -> None:
    """Insert a projection row, or overwrite it when ``values`` come from a newer event
    (``source_updated_at``): events may arrive out of order, the newest state wins."""
    table = model.__table__
    statement = _insert(session)(table).values(**values)
    updates = {key: statement.excluded[key] for key in values if key != "id"}
    statement = statement.on_conflict_do_update(
        index_elements=["id"],
        set_=updates,
        where=table.c.source_updated_at <= statement.excluded.source_updated_at,
    )
    await session.execute(statement)


async def get_organization(session: AsyncSession, organization_id: UUID) -> OrganizationRecord | None:
    return await session.get(OrganizationRecord, organization_id)


async def get_agent(session: AsyncSession, agent_id: UUID) -> AgentRecord | None:
    return await session.get(AgentRecord, agent_id)


def _weight_case() -> Any:
    weights = {p.value: w for p, w in PRIORITY_WEIGHTS.items() if p is not None}
    return case(
        *((col(TicketRecord.priority) == name, weight) for name, weight in weights.items()),
        else_=PRIORITY_WEIGHTS[None],
    )


async def roster(session: AsyncSession, *, excluding_ticket: UUID | None = None) -> list[AgentProfile]:
    """Active agents with their open tickets and priority-weighted open load (not counting
    ``excluding_ticket``, the one being assigned)."""
    load = (
        select(
            col(TicketRecord.assignee_id).label("agent_id"),
            func.count().label("open_tickets"),
            func.sum(_weight_case()).label("weighted_load"),
        )
        .where(
            col(TicketRecord.assignee_id).is_not(None),
            col(TicketRecord.status) != TicketStatus.CLOSED,
            col(TicketRecord.id) != excluding_ticket if excluding_ticket else true(),
        )
        .group_by(col(TicketRecord.assignee_id))
        .subquery()
    )
    rows = await session.execute(
        select(AgentRecord, load.c.open_tickets, load.c.weighted_load)
        .outerjoin(load, load.c.agent_id == col(AgentRecord.id))
        .where(col(AgentRecord.active).is_(True))
    )
    return [
        AgentProfile(
            agent_id=agent.id,
            name=agent.name,
            email=agent.email,
            skills=frozenset(agent.skills),
            timezone=agent.timezone,
            working_hours=agent.working_hours,
            capacity=agent.capacity,
            active=agent.active,
            open_tickets=int(open_tickets or 0),
            weighted_load=int(weighted or 0),
        )
        for agent, open_tickets, weighted in rows.all()
    ]


async def previous_assignee(session: AsyncSession, ticket: TicketRecord) -> UUID | None:
    """The consultant of the customer's most recent other ticket (the organization's, or the
    contact's when there is no organization)."""
    query = (
        select(col(TicketRecord.assignee_id))
        .where(col(TicketRecord.id) != ticket.id, col(TicketRecord.assignee_id).is_not(None))
        .order_by(col(TicketRecord.created_at).desc())
        .limit(1)
    )
    if ticket.organization_id is not None:
        query = query.where(col(TicketRecord.organization_id) == ticket.organization_id)
    else:
        query = query.where(col(TicketRecord.contact_id) == ticket.contact_id)
    return (await session.execute(query)).scalar_one_or_none()


# --- tickets and timers ----------------------------------------------------------------------


async def lock_ticket(session: AsyncSession, values: dict[str, Any]) -> tuple[TicketRecord, bool]:
    """The ticket's projection row, locked for this transaction (created from ``values`` when
    new); True when it was just created."""
    table = TicketRecord.__table__  # type: ignore[attr-defined]
    inserted = await session.execute(
        insert_ignoring_conflicts(table, dialect_of(session), "id", returning=("id",)), values
    )
    created = inserted.first() is not None
    ticket = await session.get(TicketRecord, values["id"], with_for_update=True, populate_existing=True)
    assert ticket is not None
    return ticket, created


async def get_ticket(
    session: AsyncSession, ticket_id: UUID, *, for_update: bool = False
) -> TicketRecord | None:
    return await session.get(TicketRecord, ticket_id, with_for_update=for_update)


async def timers_of(session: AsyncSession, ticket_id: UUID) -> dict[str, SlaTimer]:
    rows = await session.scalars(select(SlaTimer).where(col(SlaTimer.ticket_id) == ticket_id))
    return {row.target: row for row in rows.all()}


async def due_timers(
    session: AsyncSession, *, now: datetime, limit: int
) -> list[tuple[SlaTimer, TicketRecord]]:
    """Timers whose next alert has come, with their tickets, oldest first.

    On PostgreSQL timer and ticket rows are locked, skipping rows someone else holds: several
    watchers share the work, and a watcher never waits for a handler busy with that ticket
    (handlers lock the ticket, then its timers; waiting the other way round could deadlock)."""
    query = (
        select(SlaTimer, TicketRecord)
        .join(TicketRecord, col(TicketRecord.id) == col(SlaTimer.ticket_id))
        .where(col(SlaTimer.next_alert_at).is_not(None), col(SlaTimer.next_alert_at) <= now)
        .order_by(col(SlaTimer.next_alert_at))
        .limit(limit)
    )
    if dialect_of(session) == "postgresql":
        query = query.with_for_update(skip_locked=True, of=[SlaTimer, TicketRecord])
    return [(timer, ticket) for timer, ticket in (await session.execute(query)).all()]


async def claim_alert(
    session: AsyncSession, *, ticket_id: UUID, target: str, kind: str, due_at: datetime, event_id: UUID
) -> bool:
    """Record that this alert is sent; False when it already was (by anyone, ever)."""
    table = SlaAlert.__table__  # type: ignore[attr-defined]
    statement = (
        insert_ignoring_conflicts(table, dialect_of(session), "ticket_id", "target", "kind")
        .values(
            ticket_id=ticket_id,
            target=target,
            kind=kind,
            due_at=due_at,
            event_id=event_id,
            created_at=utcnow(),
        )
        .returning(table.c.ticket_id)
    )
    return (await session.execute(statement)).first() is not None


async def breach_alerted(session: AsyncSession, ticket_id: UUID) -> bool:
    """Whether a breach of any of the ticket's targets was already announced."""
    table = SlaAlert.__table__  # type: ignore[attr-defined]
    found = await session.execute(
        select(table.c.ticket_id).where(table.c.ticket_id == ticket_id, table.c.kind == "breached").limit(1)
    )
    return found.first() is not None


# --- decisions ---------------------------------------------------------------------------------


async def list_decisions(
    session: AsyncSession, ticket_id: UUID, *, limit: int, after: UUID | None
) -> Sequence[TriageDecision]:
    query = (
        select(TriageDecision)
        .where(col(TriageDecision.ticket_id) == ticket_id)
        .order_by(col(TriageDecision.id))
        .limit(limit)
    )
    if after is not None:
        query = query.where(col(TriageDecision.id) > after)
    return (await session.scalars(query)).all()
