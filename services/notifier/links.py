"""Ticket references and every URL we put in mail: the staff URL of a ticket, the customer's
signed links (the ticket's status page, booking time with the consultant, feedback)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from services.notifier.context import Notifier
from services.notifier.settings import Settings
from shared.signed_links import FEEDBACK, TICKET_STATUS, sign


@dataclass(frozen=True)
class TicketRef:
    id: UUID
    number: str
    subject: str
    organization_id: UUID | None


def ticket_url(settings: Settings, number: str) -> str:
    """Where staff open a ticket (internal mail links here)."""
    return settings.ticket_url_template.format(base=settings.public_base_url.rstrip("/"), number=number)


def _ticket_link_token(notifier: Notifier, *, ticket_id: UUID, email: str, now: datetime) -> str:
    """The key of a customer's links to their ticket (ticket_api's ticket page and booking page):
    signed for this ticket and this contact, working for months."""
    return sign(
        {"ticket_id": str(ticket_id), "email": email.lower()},
        purpose=TICKET_STATUS,
        secret=notifier.secret,
        expires_at=now + timedelta(days=notifier.settings.ticket_status_link_days),
    )


def ticket_status_url(notifier: Notifier, *, ticket_id: UUID, email: str, now: datetime) -> str:
    """The customer's "track your ticket" link: the ticket's state and public conversation."""
    settings = notifier.settings
    token = _ticket_link_token(notifier, ticket_id=ticket_id, email=email, now=now)
    return settings.ticket_status_url_template.format(base=settings.public_base_url.rstrip("/"), token=token)


def booking_url(notifier: Notifier, *, ticket_id: UUID, agent_id: UUID, email: str, now: datetime) -> str:
    """Where the customer picks a time with the ticket's consultant (their free slots)."""
    settings = notifier.settings
    token = _ticket_link_token(notifier, ticket_id=ticket_id, email=email, now=now)
    return settings.booking_url_template.format(
        base=settings.public_base_url.rstrip("/"), token=token, ticket_id=ticket_id, agent_id=agent_id
    )


def mail_ticket_link(
    notifier: Notifier, ticket: TicketRef, *, recipient: str, customer_facing: bool, now: datetime
) -> str:
    """The ticket link a mail carries: the signed status page for the customer, the staff URL
    for everyone else."""
    if customer_facing:
        return ticket_status_url(notifier, ticket_id=ticket.id, email=recipient, now=now)
    return ticket_url(notifier.settings, ticket.number)


def feedback_url(notifier: Notifier, *, ticket_id: UUID, email: str, rating: str, now: datetime) -> str:
    token = sign(
        {"ticket_id": str(ticket_id), "email": email, "rating": rating},
        purpose=FEEDBACK,
        secret=notifier.secret,
        expires_at=now + timedelta(days=notifier.settings.feedback_link_days),
    )
    return f"{notifier.settings.public_base_url.rstrip('/')}/api/v1/feedback/{token}"
