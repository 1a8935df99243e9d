"""Tickets as the API answers them (Public schemas, plain documents for lists) and their numbers."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row

from services.ticket_api.tickets.models import Ticket
from services.ticket_api.tickets.schemas import TicketPublic

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
