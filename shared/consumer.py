"""Idempotent event consumption: an event's effect is applied at most once per service.

The consumer records the event id in ``processed_event`` in the same transaction as the
effect. A second delivery (re-publish, retry, or a concurrent duplicate) finds the row and
skips; a failed effect rolls the row back with it, so the event is applied on a retry.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from enum import StrEnum

from sqlalchemy import Column, MetaData, String, Table, Uuid
from sqlalchemy.ext.asyncio import AsyncSession

from shared.clock import utcnow
from shared.db import SessionMaker, UtcDateTime, dialect_of, insert_ignoring_conflicts
from shared.events import Event
from shared.outbox import Outbox

log = logging.getLogger(__name__)

EventHandler = Callable[[AsyncSession, Event], Awaitable[None]]


class Outcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"


def processed_event_table(metadata: MetaData) -> Table:
    return Table(
        "processed_event",
        metadata,
        Column("event_id", Uuid, primary_key=True),
        Column("event_type", String(100), nullable=False),
        Column("processed_at", UtcDateTime, nullable=False),
    )


class EventConsumer:
    def __init__(
        self,
        *,
        table: Table,
        sessions: SessionMaker,
        handlers: Mapping[str, EventHandler],
        outbox: Outbox | None = None,
    ) -> None:
        self.table = table
        self.sessions = sessions
        self.handlers = handlers
        self.outbox = outbox

    async def consume(self, event: Event) -> Outcome:
        """Apply ``event`` once. Events the handler emits are dispatched after commit."""
        handler = self.handlers.get(event.type)
        if handler is None:
            log.info("no handler for %s; acknowledged", event.type, extra={"event_id": str(event.id)})
            return Outcome.IGNORED
        async with self.sessions() as session:
            async with session.begin():
                claim = insert_ignoring_conflicts(
                    self.table, dialect_of(session), "event_id", returning=("event_id",)
                )
                result = await session.execute(
                    claim, {"event_id": event.id, "event_type": event.type, "processed_at": utcnow()}
                )
                if result.first() is None:
                    return Outcome.DUPLICATE
                await handler(session, event)
            if self.outbox is not None:
                self.outbox.dispatch(self.outbox.take_pending(session))
        return Outcome.APPLIED
