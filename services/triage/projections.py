"""What triage knows of ticket_api's world, fed by its events only: the roster of agents, the
organizations (support tier, timezone) and each ticket's latest snapshot; and the references
triage's own events carry, read back from them."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from services.triage import repository as repo
from services.triage.errors import TicketNotFound
from services.triage.models import AgentRecord, OrganizationRecord, TicketRecord
from shared import events as ev


async def apply_agent(session: AsyncSession, event: ev.Event) -> None:
    agent = ev.payload_of(event, ev.AgentV1)
    await repo.upsert_newer(
        session,
        AgentRecord,
        {
            "id": agent.agent_id,
            "name": agent.name,
            "email": agent.email,
            "skills": agent.skills,
            "timezone": agent.timezone,
            "working_hours": agent.working_hours,
            "capacity": agent.capacity,
            "active": agent.active,
            "source_updated_at": event.occurred_at,
        },
    )


async def apply_organization(session: AsyncSession, event: ev.Event) -> None:
    organization = ev.payload_of(event, ev.OrganizationV1)
    await repo.upsert_newer(
        session,
        OrganizationRecord,
        {
            "id": organization.organization_id,
            "name": organization.name,
            "support_tier": organization.support_tier,
            "timezone": organization.timezone,
            "source_updated_at": event.occurred_at,
        },
    )


_SNAPSHOT_TYPES: dict[str, type[ev.TicketSnapshotV1]] = {
    ev.EventType.TICKET_CREATED: ev.TicketCreatedV1,
    ev.EventType.TICKET_UPDATED: ev.TicketUpdatedV1,
    ev.EventType.TICKET_STATUS_CHANGED: ev.TicketStatusChangedV1,
    ev.EventType.TICKET_CLOSED: ev.TicketClosedV1,
    ev.EventType.TICKET_MESSAGE_ADDED: ev.TicketMessageAddedV1,
}


def snapshot_of(event: ev.Event) -> ev.TicketSnapshotV1:
    """The ticket snapshot a ticket event carries, as its own payload type."""
    return ev.payload_of(event, _SNAPSHOT_TYPES[event.type])


def _snapshot_values(snapshot: ev.TicketSnapshotV1) -> dict[str, Any]:
    return {
        "number": snapshot.number,
        "subject": snapshot.subject,
        "urgency": snapshot.urgency,
        "impact": snapshot.impact,
        "category": snapshot.category,
        "status": snapshot.status,
        "priority": snapshot.priority,
        "assignee_id": snapshot.assignee_id,
        "organization_id": snapshot.organization.id if snapshot.organization else None,
        "contact_id": snapshot.contact.id,
        "contact": snapshot.contact.model_dump(mode="json"),
        "organization": snapshot.organization.model_dump(mode="json") if snapshot.organization else None,
        "snapshot_updated_at": snapshot.updated_at,
    }


async def sync_ticket(session: AsyncSession, snapshot: ev.TicketSnapshotV1) -> TicketRecord:
    """The ticket's projection, locked, brought up to ``snapshot`` unless it is older than
    what is already known (events may arrive out of order)."""
    values = _snapshot_values(snapshot)
    ticket, created = await repo.lock_ticket(
        session,
        {
            "id": snapshot.ticket_id,
            "created_at": snapshot.created_at,
            "description": getattr(snapshot, "description", None),
            **values,
        },
    )
    if not created and snapshot.updated_at >= ticket.snapshot_updated_at:
        for key, value in values.items():
            setattr(ticket, key, value)
    if ticket.description is None and isinstance(snapshot, ev.TicketCreatedV1):
        ticket.description = snapshot.description
    return ticket


async def agent_ref(session: AsyncSession, agent_id: UUID | None) -> ev.AgentRef | None:
    agent = await repo.get_agent(session, agent_id) if agent_id else None
    return ev.AgentRef(id=agent.id, name=agent.name, email=agent.email) if agent else None


def ticket_refs(ticket: TicketRecord) -> tuple[ev.ContactRef, ev.OrganizationRef | None]:
    contact = ev.ContactRef.model_validate(ticket.contact)
    organization = ev.OrganizationRef.model_validate(ticket.organization) if ticket.organization else None
    return contact, organization


async def known_ticket(session: AsyncSession, ticket_id: UUID, *, for_update: bool = False) -> TicketRecord:
    ticket = await repo.get_ticket(session, ticket_id, for_update=for_update)
    if ticket is None:
        raise TicketNotFound(f"Triage has no ticket {ticket_id} (yet).")
    return ticket
