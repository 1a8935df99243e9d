"""billing's jobs: the events it consumes (declared in shared.events.ROUTES) and its crons."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.billing import repository as repo
from services.billing.accounts import apply_organization
from services.billing.context import Billing
from services.billing.ledger import apply_time_entry, observe_status_change, record_close
from services.billing.models import IDEMPOTENCY
from services.billing.period_close import PeriodCloseReport, close_periods
from services.billing.settings import Settings
from services.billing.settlement import settle_ticket
from shared import events as ev
from shared.clock import utcnow
from shared.consumer import EventHandler
from shared.db import SessionMaker
from shared.runtime import Runtime
from shared.transient import TransientError

log = logging.getLogger(__name__)

# PostgreSQL's "deadlock detected" and "serialization failure": worth another try.
_RETRYABLE_SQLSTATES = {"40P01", "40001"}
SETTLE_BATCH = 200
# The cron's period close stops after this long; the next run (five minutes later) goes on.
PERIOD_CLOSE_TIME_BUDGET_SECONDS = 20.0


def _retryable(handler: EventHandler) -> EventHandler:
    """Two deliveries racing to create the same row lose one insert: retry it (it then finds
    the row and applies the event as an update, or as a no-op)."""

    async def wrapped(session: AsyncSession, event: ev.Event) -> None:
        try:
            await handler(session, event)
        except IntegrityError as error:
            raise TransientError(f"{event.type}: concurrent insert, retrying") from error
        except DBAPIError as error:
            if getattr(error.orig, "sqlstate", None) in _RETRYABLE_SQLSTATES:
                raise TransientError(f"{event.type}: {error.orig}") from error
            raise

    return wrapped


def build_handlers(billing: Billing) -> dict[str, EventHandler]:
    async def on_organization(session: AsyncSession, event: ev.Event) -> None:
        await apply_organization(
            session, billing.settings, ev.payload_of(event, ev.OrganizationV1), event.occurred_at
        )

    async def on_time_entry(session: AsyncSession, event: ev.Event) -> None:
        await apply_time_entry(session, ev.payload_of(event, ev.TimeEntryV1), event.occurred_at)

    async def on_ticket_closed(session: AsyncSession, event: ev.Event) -> None:
        await record_close(
            session, billing.settings, ev.payload_of(event, ev.TicketClosedV1), event.occurred_at
        )

    async def on_status_changed(session: AsyncSession, event: ev.Event) -> None:
        await observe_status_change(
            session, ev.payload_of(event, ev.TicketStatusChangedV1), event.occurred_at
        )

    handlers: dict[ev.EventType, EventHandler] = {
        ev.EventType.ORGANIZATION_CREATED: on_organization,
        ev.EventType.ORGANIZATION_UPDATED: on_organization,
        ev.EventType.ORGANIZATION_SLA_SIGNED: on_organization,
        ev.EventType.TIME_ENTRY_LOGGED: on_time_entry,
        ev.EventType.TIME_ENTRY_UPDATED: on_time_entry,
        ev.EventType.TIME_ENTRY_DELETED: on_time_entry,
        ev.EventType.TICKET_CLOSED: on_ticket_closed,
        ev.EventType.TICKET_STATUS_CHANGED: on_status_changed,
    }
    return {event_type.value: _retryable(handler) for event_type, handler in handlers.items()}


async def settle_due(sessions: SessionMaker, billing: Billing, *, now: datetime) -> int:
    """Charge every close whose settle time has come; one transaction per ticket."""
    settled = 0
    while True:
        async with sessions() as session:
            ticket_ids = await repo.due_closes(session, now=now, limit=SETTLE_BATCH)
        settled_now = 0
        for ticket_id in ticket_ids:
            async with sessions() as session:
                uow = billing.unit_of_work(session)
                settled_now += await settle_ticket(uow, billing.settings, ticket_id, now=now)
                await uow.commit()
        settled += settled_now
        # A close whose organization billing does not know yet stays due: try it next time.
        if len(ticket_ids) < SETTLE_BATCH or settled_now == 0:
            return settled


def _context(ctx: dict[str, Any]) -> tuple[Runtime, Billing]:
    runtime: Runtime = ctx["runtime"]
    settings = runtime.settings
    assert isinstance(settings, Settings)
    return runtime, Billing(settings, runtime.outbox)


async def settle_due_closes(ctx: dict[str, Any]) -> int:
    """Cron: charge closed tickets whose settle delay has passed."""
    runtime, billing = _context(ctx)
    return await settle_due(runtime.sessions, billing, now=utcnow())


async def purge_idempotency_records(ctx: dict[str, Any]) -> int:
    """Cron: forget Idempotency-Key answers older than ``BILLING_IDEMPOTENCY_TTL_HOURS``."""
    runtime, billing = _context(ctx)
    cutoff = utcnow() - timedelta(hours=billing.settings.idempotency_ttl_hours)
    async with runtime.sessions() as session, session.begin():
        return await IDEMPOTENCY.purge(session, older_than=cutoff)


async def close_due_periods(ctx: dict[str, Any]) -> str:
    """Cron: close every account's last complete period not closed yet."""
    runtime, billing = _context(ctx)
    report: PeriodCloseReport = await close_periods(
        runtime.sessions,
        billing,
        now=utcnow(),
        time_budget_seconds=PERIOD_CLOSE_TIME_BUDGET_SECONDS,
    )
    return str(report)
