"""Turning rows into what the API answers (Public schemas) and what events carry."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row

from services.ticket_api.models import (
    Contact,
    Organization,
    OrganizationPublic,
    Ticket,
    TicketPublic,
)
from shared.events import ContactRef, OrganizationRef

API = "/api/v1"


def ticket_number(number: int) -> str:
    return f"TKT-{number}"


def parse_ticket_number(text: str) -> int | None:
    """``TKT-42`` or ``42`` → 42; anything else → None."""
    digits = text.upper().removeprefix("TKT-")
    return int(digits) if digits.isascii() and digits.isdigit() and len(digits) <= 18 else None


def ticket_document(ticket: Ticket | Row[Any]) -> dict[str, Any]:
    """The API's view of a ticket (an ORM object, or a row with the ticket's columns) as plain
    values, in :class:`TicketPublic`'s field order: what a list answers straight as JSON."""
    path = f"{API}/tickets/{ticket.id}"
    return {
        "id": ticket.id,
        "number": ticket_number(ticket.number),
        "subject": ticket.subject,
        "description": ticket.description,
        "urgency": ticket.urgency,
        "impact": ticket.impact,
        "category": ticket.category,
        "channel": ticket.channel,
        "status": ticket.status,
        "priority": ticket.priority,
        "assignee_id": ticket.assignee_id,
        "contact_id": ticket.contact_id,
        "organization_id": ticket.organization_id,
        "created_at": ticket.created_at,
        "updated_at": ticket.updated_at,
        "closed_at": ticket.closed_at,
        "links": {
            "self": path,
            "messages": f"{path}/messages",
            "status": f"{path}/status",
            "audit": f"{path}/audit",
        },
    }


def ticket_public(ticket: Ticket | Row[Any]) -> TicketPublic:
    """The API's view of a ticket, validated."""
    return TicketPublic.model_validate(ticket_document(ticket))


def organization_public(organization: Organization, domains: list[str]) -> OrganizationPublic:
    return OrganizationPublic(
        id=organization.id,
        name=organization.name,
        support_tier=organization.support_tier,
        timezone=organization.timezone,
        sla_signed=organization.sla_signed_at is not None,
        sla_signed_at=organization.sla_signed_at,
        email_domains=domains,
        created_at=organization.created_at,
        updated_at=organization.updated_at,
    )


def contact_ref(contact: Contact) -> ContactRef:
    return ContactRef(id=contact.id, email=contact.email, name=contact.name)


def organization_ref(organization: Organization | None) -> OrganizationRef | None:
    if organization is None:
        return None
    return OrganizationRef(
        id=organization.id,
        name=organization.name,
        support_tier=organization.support_tier,
        sla_signed=organization.sla_signed_at is not None,
        timezone=organization.timezone,
    )
