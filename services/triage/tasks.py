"""triage's jobs: the events it consumes (what it receives is declared in
shared.events.ROUTES) and the SLA watcher (an arq cron job). Each handler runs inside the
consumer's transaction, wrapped in a unit of work over triage's one event recorder; the
consumer publishes what it recorded after commit."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.triage import alerts, projections, sla_clock, triaging
from services.triage.context import Clock, Context
from services.triage.models import outbox
from services.triage.settings import Settings
from shared.clock import utcnow
from shared.consumer import EventHandler
from shared.events import (
    Event,
    EventType,
    Service,
    TicketMessageAddedV1,
    TicketStatusChangedV1,
    TicketUpdatedV1,
)
from shared.outbox import Outbox
from shared.runtime import Runtime
from shared.uow import UnitOfWork

log = logging.getLogger(__name__)

TICKET_EVENTS = (
    EventType.TICKET_CREATED,
    EventType.TICKET_UPDATED,
    EventType.TICKET_STATUS_CHANGED,
    EventType.TICKET_CLOSED,
    EventType.TICKET_MESSAGE_ADDED,
)
ORGANIZATION_EVENTS = (
    EventType.ORGANIZATION_CREATED,
    EventType.ORGANIZATION_UPDATED,
    EventType.ORGANIZATION_SLA_SIGNED,
)


def context_of(settings: Settings, clock: Clock = utcnow) -> Context:
    return Context(warning_share=settings.sla_warning_share, clock=clock)


async def on_ticket_event(uow: UnitOfWork, event: Event, context: Context) -> None:
    """Every ticket event: keep the projection, triage a ticket seen for the first time (or
    again when its inputs changed), and move its SLA timers (pause, resume, stop, first
    response)."""
    session = uow.session
    snapshot = projections.snapshot_of(event)
    ticket = await projections.sync_ticket(session, snapshot)
    await session.flush()
    if ticket.triaged_at is None:
        await triaging.triage_ticket(uow, ticket, trigger="created", actor=triaging.ACTOR, context=context)
    elif isinstance(snapshot, TicketUpdatedV1):
        await triaging.on_ticket_updated(uow, ticket, snapshot, context)

    if isinstance(snapshot, TicketStatusChangedV1):
        await sla_clock.on_status_changed(session, ticket, snapshot, event.occurred_at, context)
    elif (
        isinstance(snapshot, TicketMessageAddedV1)
        and snapshot.author_kind == "agent"
        and snapshot.visibility == "public"
    ):
        await sla_clock.first_response(
            session, ticket, event.occurred_at, context, source=f"message:{snapshot.message_id}"
        )


def build_handlers(settings: Settings, clock: Clock = utcnow) -> dict[str, EventHandler]:
    """Event type -> handler(session, event); each runs inside the consumer's transaction."""
    context = context_of(settings, clock)
    # Records into the consumer's transaction; the consumer dispatches after its commit.
    recorder = Outbox(outbox, Service.TRIAGE)

    async def on_ticket(session: AsyncSession, event: Event) -> None:
        await on_ticket_event(UnitOfWork(session, recorder), event, context)

    async def on_time_entry(session: AsyncSession, event: Event) -> None:
        await sla_clock.apply_time_entry(session, event, context)

    handlers: dict[str, EventHandler] = {event_type.value: on_ticket for event_type in TICKET_EVENTS}
    handlers |= {event_type.value: projections.apply_organization for event_type in ORGANIZATION_EVENTS}
    handlers[EventType.AGENT_CREATED.value] = projections.apply_agent
    handlers[EventType.AGENT_UPDATED.value] = projections.apply_agent
    handlers[EventType.TIME_ENTRY_LOGGED.value] = on_time_entry
    handlers[EventType.TIME_ENTRY_DELETED.value] = on_time_entry  # a deleted call no longer counts
    return handlers


async def watch_sla(ctx: dict[str, Any]) -> int:
    """The SLA watcher (arq cron, unique across workers): warnings and breaches that are due.
    ``ctx["clock"]`` may replace the wall clock (tests). Each batch commits on its own; an
    alert is claimed by a unique row, so even two watchers never send one twice."""
    runtime: Runtime = ctx["runtime"]
    settings = runtime.settings
    assert isinstance(settings, Settings)
    clock: Clock = ctx.get("clock", utcnow)
    context = context_of(settings, clock)
    now = clock()
    handled = 0
    while True:
        async with runtime.sessions() as session:
            uow = UnitOfWork(session, runtime.outbox)
            batch = await alerts.watch_timers(
                uow, now=now, context=context, limit=settings.sla_watch_batch_size
            )
            await uow.commit()
        handled += batch
        if batch < settings.sla_watch_batch_size:
            break
    if handled:
        log.info("SLA watcher handled %d timers", handled)
    return handled


__all__ = ["build_handlers", "watch_sla"]
