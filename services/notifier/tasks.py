"""notifier's jobs: the events it consumes (what it receives is declared in shared.events.ROUTES),
one job per email and per webhook delivery, and the sweeper that re-enqueues lost ones."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from services.notifier import delivery
from services.notifier.context import Notifier
from services.notifier.delivery import email, webhooks
from services.notifier.dispatch import SEND_EMAIL, Job
from services.notifier.handlers import (
    appointments,
    billing,
    conversation,
    mail_events,
    projections,
    sla,
    tickets,
)
from shared.consumer import EventHandler
from shared.events import Event, EventType
from shared.queue import job_function

log = logging.getLogger(__name__)

NotifierHandler = Callable[[AsyncSession, Notifier, Event], Awaitable[None]]

RULES: dict[str, NotifierHandler] = {
    EventType.TICKET_CREATED: tickets.on_ticket_created,
    EventType.TICKET_UPDATED: tickets.on_ticket_updated,
    EventType.TICKET_MESSAGE_ADDED: conversation.on_message_added,
    EventType.TICKET_STATUS_CHANGED: conversation.on_status_changed,
    EventType.TICKET_CLOSED: conversation.on_ticket_closed,
    EventType.TICKET_TRIAGED: tickets.on_ticket_triaged,
    EventType.SLA_WARNING: sla.on_sla_warning,
    EventType.SLA_BREACHED: sla.on_sla_breached,
    EventType.AGENT_CREATED: projections.on_agent_changed,
    EventType.AGENT_UPDATED: projections.on_agent_changed,
    EventType.INVOICE_ISSUED: billing.on_invoice_issued,
    EventType.ALLOWANCE_THRESHOLD_REACHED: billing.on_allowance_threshold,
    EventType.BLOCK_LOW: billing.on_block_balance,
    EventType.BLOCK_EXHAUSTED: billing.on_block_balance,
    EventType.EMAIL_BOUNCED: mail_events.on_email_bounced,
    EventType.CUSTOMER_SIGN_IN_REQUESTED: mail_events.on_sign_in_requested,
    EventType.EMAIL_ATTACHMENTS_REFUSED: mail_events.on_attachments_refused,
    EventType.APPOINTMENT_BOOKED: appointments.on_appointment_changed,
    EventType.APPOINTMENT_RESCHEDULED: appointments.on_appointment_changed,
    EventType.APPOINTMENT_CANCELLED: appointments.on_appointment_changed,
}


def handlers(notifier: Notifier) -> dict[str, EventHandler]:
    """HANDLERS (event type → handler(session, event)) bound to this process's notifier."""

    def bind(rule: NotifierHandler) -> EventHandler:
        async def handle(session: AsyncSession, event: Event) -> None:
            await rule(session, notifier, event)

        return handle

    return {str(event_type): bind(rule) for event_type, rule in RULES.items()}


async def send_notification(ctx: dict[str, Any], notification_id: str, attempt: int) -> str:
    """One send attempt of one email (job id ``send_notification:<id>:<attempt>``)."""
    return await email.deliver_email(ctx["notifier"], UUID(notification_id), attempt)


async def deliver_webhook(ctx: dict[str, Any], delivery_id: str, attempt: int) -> str:
    """One signed POST of one webhook delivery (job id ``deliver_webhook:<id>:<attempt>``)."""
    return await webhooks.deliver_webhook(ctx["notifier"], UUID(delivery_id), attempt)


async def run_here(notifier: Notifier, job: Job) -> str:
    """What the mail job ``job`` would do, run in this process (the worker's dispatcher does
    this for mail due at once)."""
    if job.function == SEND_EMAIL and job.claimed is not None:
        return await email.send_claimed(notifier, job.claimed)
    if job.function == SEND_EMAIL:
        return await email.deliver_email(notifier, UUID(job.row_id), job.attempt)
    raise ValueError(f"{job.function!r} jobs run in the queue, not here")


async def run_sweeper(notifier: Notifier) -> None:
    """Re-enqueue lost jobs forever (until cancelled), surviving database and Redis outages."""
    settings = notifier.settings
    grace = timedelta(seconds=settings.outbox_relay_grace_seconds)
    while True:
        try:
            await delivery.sweep(notifier, grace=grace)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("sweep failed; retrying", exc_info=True)
        await asyncio.sleep(settings.sweep_interval_seconds)


# No result is kept: a finished job's id is free again at once, so the sweeper can re-enqueue a
# row whose job ran too early (clock skew) or was lost; the row's claim keeps sends single.
JOB_FUNCTIONS = [
    job_function(send_notification, keep_result=0),
    job_function(deliver_webhook, keep_result=0),
]
