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

from services.notifier import service
from services.notifier.dispatch import SEND_EMAIL, Job
from services.notifier.service import Notifier
from shared.consumer import EventHandler
from shared.events import Event, EventType
from shared.queue import job_function

log = logging.getLogger(__name__)

NotifierHandler = Callable[[AsyncSession, Notifier, Event], Awaitable[None]]

RULES: dict[str, NotifierHandler] = {
    EventType.TICKET_CREATED: service.on_ticket_created,
    EventType.TICKET_UPDATED: service.on_ticket_updated,
    EventType.TICKET_MESSAGE_ADDED: service.on_message_added,
    EventType.TICKET_STATUS_CHANGED: service.on_status_changed,
    EventType.TICKET_CLOSED: service.on_ticket_closed,
    EventType.TICKET_TRIAGED: service.on_ticket_triaged,
    EventType.SLA_WARNING: service.on_sla_warning,
    EventType.SLA_BREACHED: service.on_sla_breached,
    EventType.AGENT_CREATED: service.on_agent_changed,
    EventType.AGENT_UPDATED: service.on_agent_changed,
    EventType.INVOICE_ISSUED: service.on_invoice_issued,
    EventType.ALLOWANCE_THRESHOLD_REACHED: service.on_allowance_threshold,
    EventType.BLOCK_LOW: service.on_block_balance,
    EventType.BLOCK_EXHAUSTED: service.on_block_balance,
    EventType.EMAIL_BOUNCED: service.on_email_bounced,
    EventType.CUSTOMER_SIGN_IN_REQUESTED: service.on_sign_in_requested,
    EventType.EMAIL_ATTACHMENTS_REFUSED: service.on_attachments_refused,
    EventType.APPOINTMENT_BOOKED: service.on_appointment_changed,
    EventType.APPOINTMENT_RESCHEDULED: service.on_appointment_changed,
    EventType.APPOINTMENT_CANCELLED: service.on_appointment_changed,
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
    return await service.deliver_email(ctx["notifier"], UUID(notification_id), attempt)


async def deliver_webhook(ctx: dict[str, Any], delivery_id: str, attempt: int) -> str:
    """One signed POST of one webhook delivery (job id ``deliver_webhook:<id>:<attempt>``)."""
    return await service.deliver_webhook(ctx["notifier"], UUID(delivery_id), attempt)


async def run_here(notifier: Notifier, job: Job) -> str:
    """What the mail job ``job`` would do, run in this process (the worker's dispatcher does
    this for mail due at once)."""
    if job.function == SEND_EMAIL and job.claimed is not None:
        return await service.send_claimed(notifier, job.claimed)
    if job.function == SEND_EMAIL:
        return await service.deliver_email(notifier, UUID(job.row_id), job.attempt)
    raise ValueError(f"{job.function!r} jobs run in the queue, not here")


async def run_sweeper(notifier: Notifier) -> None:
    """Re-enqueue lost jobs forever (until cancelled), surviving database and Redis outages."""
    settings = notifier.settings
    grace = timedelta(seconds=settings.outbox_relay_grace_seconds)
    while True:
        try:
            await service.sweep(notifier, grace=grace)
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
