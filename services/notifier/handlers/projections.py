"""What the notifier keeps of ticket_api's tickets and agents between events (``ticket_view``,
``agent``), and where a consultant reads their mail."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from services.notifier import repository as repo
from services.notifier.context import Notifier
from services.notifier.links import TicketRef
from shared import events as ev


def ticket_ref(p: ev.TicketSnapshotV1) -> TicketRef:
    return TicketRef(
        id=p.ticket_id,
        number=p.number,
        subject=p.subject,
        organization_id=p.organization.id if p.organization else None,
    )


async def project_ticket(session: AsyncSession, p: ev.TicketSnapshotV1) -> None:
    await repo.upsert_ticket_view(
        session,
        {
            "ticket_id": p.ticket_id,
            "number": p.number,
            "subject": p.subject,
            "contact_email": p.contact.email,
            "contact_name": p.contact.name,
            "organization_id": p.organization.id if p.organization else None,
            "timezone": p.organization.timezone if p.organization else None,
            "support_tier": p.organization.support_tier if p.organization else None,
            "assignee_id": p.assignee_id,
            "priority": p.priority,
            "status": p.status,
            "created_at": p.created_at,
            "updated_at": p.updated_at,
        },
    )


async def staff_timezone(session: AsyncSession, notifier: Notifier, agent_id: UUID | None) -> str:
    """Where a consultant reads their mail: their own timezone (the office's for the team, or
    for an agent whose timezone is not known here yet)."""
    agent = await repo.get_agent(session, agent_id) if agent_id else None
    return agent.timezone if agent and agent.timezone else notifier.settings.office_timezone


async def on_agent_changed(session: AsyncSession, notifier: Notifier, event: ev.Event) -> None:
    p = ev.payload_of(event, ev.AgentV1)
    await repo.upsert_agent(
        session,
        {
            "id": p.agent_id,
            "email": p.email,
            "name": p.name,
            "active": p.active,
            "timezone": p.timezone,
            "updated_at": event.occurred_at,
        },
    )
