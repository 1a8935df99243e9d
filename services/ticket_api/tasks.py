"""ticket_api's jobs: the events it consumes and its housekeeping."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from services.ticket_api import db
from services.ticket_api.inbound import repository as inbound_repo
from services.ticket_api.settings import Settings
from services.ticket_api.tickets.triage_results import TRIAGE_HANDLERS
from shared.clock import utcnow
from shared.consumer import EventHandler
from shared.runtime import Runtime

# What ticket_api consumes: triage's results (ticket.triaged, sla.breached).
HANDLERS: dict[str, EventHandler] = dict(TRIAGE_HANDLERS)
RAW_PURGE_BATCH = 500


async def purge_raw_email(ctx: dict[str, Any]) -> int:
    """Delete raw copies of inbound mail older than the retention period, a batch a transaction
    (no long lock, and a crash keeps what is done). Returns how many."""
    runtime: Runtime = ctx["runtime"]
    settings = runtime.settings
    assert isinstance(settings, Settings)
    if settings.inbound_raw_retention_days == 0:
        return 0
    now = utcnow()
    cutoff = now - timedelta(days=settings.inbound_raw_retention_days)
    purged = 0
    while True:
        async with runtime.sessions() as session, session.begin():
            batch = await inbound_repo.purge_raw_messages(
                session, older_than=cutoff, now=now, limit=RAW_PURGE_BATCH
            )
        purged += batch
        if batch < RAW_PURGE_BATCH:
            return purged


async def purge_idempotency_records(ctx: dict[str, Any]) -> int:
    """Forget Idempotency-Key answers older than the configured window (at least 24 h)."""
    runtime: Runtime = ctx["runtime"]
    settings = runtime.settings
    assert isinstance(settings, Settings)
    cutoff = utcnow() - timedelta(hours=settings.idempotency_ttl_hours)
    async with runtime.sessions() as session, session.begin():
        return await db.purge_idempotency_records(session, older_than=cutoff)
