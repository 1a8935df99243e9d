"""Appointments booked, moved or cancelled: the customer and the consultant each get a mail
with the calendar invite."""

from __future__ import annotations

import base64
import logging
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from services.notifier import repository as repo
from services.notifier.calendar_invites import ICS_FILENAME, Organizer, build_invite, method_for
from services.notifier.context import Notifier
from services.notifier.handlers.projections import staff_timezone
from services.notifier.links import TicketRef, booking_url, mail_ticket_link
from services.notifier.models import (
    NotificationKind,
)
from services.notifier.recording import Mail, queue_email
from shared import events as ev
from shared.time_format import format_clock, format_instant

log = logging.getLogger(__name__)


APPOINTMENT_CHANGES = {
    ev.EventType.APPOINTMENT_BOOKED: "booked",
    ev.EventType.APPOINTMENT_RESCHEDULED: "rescheduled",
    ev.EventType.APPOINTMENT_CANCELLED: "cancelled",
}


def appointment_mail_key(appointment_id: UUID, sequence: int) -> str:
    """One key per change of an appointment (its SEQUENCE), ordered like the changes."""
    return f"appointment:{appointment_id}:{sequence:06d}"


async def on_appointment_changed(session: AsyncSession, notifier: Notifier, event: ev.Event) -> None:
    """Booked, moved or cancelled: the customer and the consultant each get a mail with the
    calendar invite (METHOD:REQUEST, or CANCEL) attached, quoting the policy. A change that
    arrives after a later one of the same appointment is dropped: its invite is out of date."""
    p = ev.payload_of(event, ev.AppointmentV1)
    settings = notifier.settings
    key = appointment_mail_key(p.appointment_id, p.sequence)
    if await repo.later_mail_exists(session, f"appointment:{p.appointment_id}:", key):
        log.info("appointment %s sequence %s arrived after a later change: not mailed", p.uid, p.sequence)
        return
    ticket = TicketRef(
        id=p.ticket_id,
        number=p.number,
        subject=p.subject,
        organization_id=p.organization.id if p.organization else None,
    )

    def invite_for(recipient: str, customer_facing: bool) -> dict[str, Any]:
        """The invite attached for one side: the same event (UID, SEQUENCE), each side's link."""
        link = mail_ticket_link(
            notifier, ticket, recipient=recipient, customer_facing=customer_facing, now=notifier.clock()
        )
        invite = build_invite(
            p,
            organizer=Organizer(email=settings.support_address, name=f"{settings.company_name} Support"),
            stamp=event.occurred_at,
            ticket_url=link,
            prodid=f"-//{settings.company_name}//Helpdesk appointments//EN",
        )
        return {
            "kind": "inline",
            "filename": ICS_FILENAME,
            "content_type": "text/calendar",
            "params": {"method": method_for(p).value, "charset": "UTF-8"},
            "content_b64": base64.b64encode(invite).decode(),
        }

    minutes = int((p.ends_at - p.starts_at).total_seconds() // 60)
    appointment = {
        "change": APPOINTMENT_CHANGES[ev.EventType(event.type)],
        "minutes": minutes,
        "policy": p.policy,
        "late_cancellation": p.late_cancellation,
        "cancel_reason": p.cancel_reason,
        "filename": ICS_FILENAME,
        "booking_url": booking_url(
            notifier, ticket_id=p.ticket_id, agent_id=p.agent.id, email=p.contact.email, now=notifier.clock()
        ),
    }
    consultant = {"name": p.agent.name, "email": p.agent.email}
    customer = {"name": p.contact.name or p.contact.email, "email": p.contact.email}
    organization = p.organization.name if p.organization else None
    # Each reads in their own timezone: the customer in their organization's (p.timezone), the
    # consultant in theirs, with the customer's time beside it when the two differ.
    consultant_zone = await staff_timezone(session, notifier, p.agent.id)
    for kind, recipient, name, customer_facing, reader, other in (
        (NotificationKind.APPOINTMENT_CUSTOMER, p.contact.email, p.contact.name, True, p.timezone, None),
        (
            NotificationKind.APPOINTMENT_CONSULTANT,
            p.agent.email,
            p.agent.name,
            False,
            consultant_zone,
            p.timezone,
        ),
    ):
        times = {
            "starts": format_instant(p.starts_at, reader),
            "ends": format_clock(p.ends_at, reader),
            "timezone": reader,
            "starts_customer": format_instant(p.starts_at, other) if other and other != reader else None,
        }
        await queue_email(
            session,
            notifier,
            Mail(
                dedupe_key=key,
                event_type=event.type,
                kind=kind,
                recipient=recipient,
                recipient_name=name,
                ticket=ticket,
                customer_facing=customer_facing,
                context={
                    "appointment": {**appointment, **times},
                    "consultant": consultant,
                    "customer": customer,
                    "organization": organization,
                },
                attachments=[invite_for(recipient, customer_facing)],
            ),
        )
