"""What a customer sees behind the "track your ticket" link of our mail.

The link comes from notifier (``shared.signed_links``, purpose ``ticket-status``: the ticket
id, the contact's email, an expiry of months, not minutes: it sits in the customer's mailbox).
It opens one ticket and only what the customer's own mail already carries: its state, the
consultant's name, and the public conversation (internal notes never). What it lets the
customer do is what their mailbox already lets them do, as that contact and by the API's rules:
write to us (as a reply by mail would), and book time with the consultant (the mail's booking
link leads there: signed SLA, free slots, no double booking).
A link works only for the ticket's own contact (the address it was mailed to).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from services.ticket_api.caller import Caller
from services.ticket_api.errors import TicketLinkInvalid
from services.ticket_api.identity import repository as identity_repo
from services.ticket_api.identity.service import customer_principal
from services.ticket_api.organizations import repository as organization_repo
from services.ticket_api.organizations.models import Contact
from services.ticket_api.scheduling import repository as scheduling_repo
from services.ticket_api.scheduling.models import Appointment, AppointmentStatus
from services.ticket_api.tickets import repository as ticket_repo
from services.ticket_api.tickets.models import AuthorKind, Ticket
from services.ticket_api.tickets.views import ticket_number
from shared.signed_links import TICKET_STATUS, ExpiredLink, InvalidLink, verify
from shared.time_format import reader_zone
from shared.uow import UnitOfWork
from shared.vocabulary import TicketStatus

# More than any real conversation holds; the page stays bounded whatever happens.
MAX_ENTRIES = 500

# In the words of our mail (the notifier's status update: "Received", "In progress", "Waiting
# for your reply"), so the page and the mailbox never disagree.
STATUS_TEXT: dict[TicketStatus, str] = {
    TicketStatus.NEW: "Received: we are looking at it and will assign a consultant shortly.",
    TicketStatus.OPEN: "In progress: a consultant is working on it.",
    TicketStatus.PENDING_CUSTOMER: "Waiting for your reply: please reply to our last message.",
    TicketStatus.CLOSED: "Closed.",
}


@dataclass(frozen=True)
class Entry:
    """One turn of the conversation as the customer sees it."""

    author: str
    from_customer: bool
    body: str
    at: datetime


@dataclass(frozen=True)
class TicketStatusView:
    number: str
    subject: str
    status: TicketStatus
    opened_at: datetime
    closed_at: datetime | None
    consultant: str | None
    timezone: ZoneInfo
    entries: list[Entry]
    truncated: bool
    appointments: list[Appointment]  # booked, not yet over

    @property
    def status_text(self) -> str:
        if self.status is TicketStatus.NEW and self.consultant:
            return f"Received: {self.consultant} has it and will be in touch shortly."
        return STATUS_TEXT[self.status]

    @property
    def can_write(self) -> bool:
        """Whether the page offers to write to us (not on a closed ticket)."""
        return self.status != TicketStatus.CLOSED

    @property
    def can_book(self) -> bool:
        """Whether booking time is worth offering (the booking page says why when it is not)."""
        return self.consultant is not None and self.status != TicketStatus.CLOSED


async def open_link(uow: UnitOfWork, token: str, *, secret: str) -> tuple[Ticket, Contact]:
    """The ticket a genuine, unexpired link is about, and its contact; refuses forged, altered
    or stale links, and links made out to anyone but the ticket's contact."""
    try:
        payload: dict[str, Any] = verify(token, purpose=TICKET_STATUS, secret=secret)
        ticket_id = UUID(str(payload["ticket_id"]))
        email = str(payload["email"]).lower()
    except ExpiredLink:
        raise TicketLinkInvalid(
            "This link has expired. Reply to any of our emails about the ticket, or ask for a sign-in link."
        ) from None
    except (InvalidLink, KeyError, ValueError):
        raise TicketLinkInvalid("This ticket link is not valid (it may have been altered).") from None
    session = uow.session
    ticket = await ticket_repo.get_ticket(session, ticket_id)
    contact = await organization_repo.get_contact(session, ticket.contact_id) if ticket else None
    if ticket is None or contact is None or contact.email != email:
        raise TicketLinkInvalid("This link does not match a ticket of yours.")
    return ticket, contact


def link_caller(contact: Contact, request_id: str | None) -> Caller:
    """Who acts through the link: the ticket's contact, as a signed-in customer would be."""
    return Caller(principal=customer_principal(contact), request_id=request_id)


async def status_of(
    uow: UnitOfWork, ticket: Ticket, contact: Contact, *, company: str, now: datetime
) -> TicketStatusView:
    """The ticket as its contact may see it."""
    session = uow.session
    organization = (
        await organization_repo.get_organization(session, ticket.organization_id)
        if ticket.organization_id
        else None
    )
    consultant = await identity_repo.get_agent(session, ticket.assignee_id) if ticket.assignee_id else None
    you = contact.name or contact.email
    entries = [Entry(you, True, ticket.description, ticket.created_at)]
    messages = await ticket_repo.list_messages(
        session, ticket.id, include_internal=False, limit=MAX_ENTRIES + 1, after=None
    )
    agents: dict[UUID, str] = {}
    for message in messages[:MAX_ENTRIES]:
        if message.author_kind == AuthorKind.CUSTOMER:
            entries.append(Entry(you, True, message.body, message.created_at))
            continue
        author = f"{company} Support"
        if message.author_kind == AuthorKind.AGENT and message.author_id is not None:
            if message.author_id not in agents:
                agent = await identity_repo.get_agent(session, message.author_id)
                agents[message.author_id] = agent.name if agent else author
            author = agents[message.author_id]
        entries.append(Entry(author, False, message.body, message.created_at))
    appointments = [
        a
        for a in await scheduling_repo.appointments_of(session, ticket.id)
        if a.status == AppointmentStatus.BOOKED and a.ends_at > now
    ]
    return TicketStatusView(
        number=ticket_number(ticket.number),
        subject=ticket.subject,
        status=TicketStatus(ticket.status),
        opened_at=ticket.created_at,
        closed_at=ticket.closed_at,
        consultant=consultant.name if consultant else None,
        timezone=reader_zone(organization.timezone if organization else None),
        entries=entries,
        truncated=len(messages) > MAX_ENTRIES,
        appointments=appointments,
    )
