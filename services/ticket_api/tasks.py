"""ticket_api's jobs: the events it consumes and its housekeeping."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from services.ticket_api import repository as repo
from services.ticket_api.settings import Settings
from services.ticket_api.triage_results import TRIAGE_HANDLERS
from shared.clock import utcnow
from shared.consumer import EventHandler
from shared.runtime import Runtime

# What ticket_api consumes: triage's results (ticket.triaged, sla.breached).
HANDLERS: dict[str, EventHandler] = dict(TRIAGE_HANDLERS)


async def purge_idempotency_records(ctx: dict[str, Any]) -> int:
    """Forget Idempotency-Key answers older than the configured window (at least 24 h)."""
    runtime: Runtime = ctx["runtime"]
    settings = runtime.settings
    assert isinstance(settings, Settings)
    cutoff = utcnow() - timedelta(hours=settings.idempotency_ttl_hours)
    async with runtime.sessions() as session, session.begin():
        return await repo.purge_idempotency_records(session, older_than=cutoff)
