"""Events inbound email consumes: ``notification.sent`` tells which Message-ID we gave each
mail about a ticket, so a reply quoting it finds the ticket (even after the MAC key rotates)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.ticket_api.inbound import repository as inbound_repo
from shared import events as ev
from shared.consumer import EventHandler


async def on_notification_sent(session: AsyncSession, event: ev.Event) -> None:
    payload = ev.payload_of(event, ev.NotificationSentV1)
    if payload.ticket_id is None:
        return  # mail about no ticket (sign-in links, invoices): nothing to thread
    await inbound_repo.remember_sent_message_id(session, payload.message_id.strip(), payload.ticket_id)


INBOUND_HANDLERS: dict[str, EventHandler] = {ev.EventType.NOTIFICATION_SENT.value: on_notification_sent}
