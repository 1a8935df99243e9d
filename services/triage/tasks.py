"""triage's jobs: the events it consumes (what it receives is declared in
shared.events.ROUTES) and the SLA watcher (an arq cron job)."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.triage import service
from services.triage.models import utcnow
from services.triage.settings import Settings
from shared.consumer import EventHandler
from shared.events import Event, EventType
from shared.runtime import Runtime

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


def context_of(settings: Settings, clock: service.Clock = utcnow) -> service.Context:
    return service.Context(warning_share=settings.sla_warning_share, clock=clock)


def build_handlers(settings: Settings, clock: service.Clock = utcnow) -> dict[str, EventHandler]:
    """Event type -> handler(session, event); each runs inside the consumer's transaction."""
    context = context_of(settings, clock)

    async def on_ticket(session: AsyncSession, event: Event) -> None:
        await service.on_ticket_event(session, event, context)

    async def on_time_entry(session: AsyncSession, event: Event) -> None:
        await service.apply_time_entry(session, event, context)

    handlers: dict[str, EventHandler] = {event_type.value: on_ticket for event_type in TICKET_EVENTS}
    handlers |= {event_type.value: service.apply_organization for event_type in ORGANIZATION_EVENTS}
    handlers[EventType.AGENT_CREATED.value] = service.apply_agent
    handlers[EventType.AGENT_UPDATED.value] = service.apply_agent
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
    clock: service.Clock = ctx.get("clock", utcnow)
    context = context_of(settings, clock)
    now = clock()
    handled = 0
    while True:
        async with runtime.sessions() as session:
            async with session.begin():
                batch = await service.watch_timers(
                    session, now=now, context=context, limit=settings.sla_watch_batch_size
                )
            runtime.outbox.dispatch(runtime.outbox.take_pending(session))
        handled += batch
        if batch < settings.sla_watch_batch_size:
            break
    if handled:
        log.info("SLA watcher handled %d timers", handled)
    return handled


__all__ = ["build_handlers", "watch_sla"]
