"""The transactional outbox.

An event is written to the service's ``outbox`` table in the same transaction as the change
it describes (:meth:`Outbox.record`). Right after commit it is published in the background
(fast path, :meth:`Outbox.dispatch`); the relay (:meth:`Outbox.relay_once`, run by the
service's worker) re-publishes whatever is still unpublished after a grace period, so a
crash between commit and publish loses nothing. Publishing twice is harmless: job ids are
deterministic and consumers are idempotent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from uuid import UUID

from sqlalchemy import Column, Index, MetaData, String, Table, Text, Uuid, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.clock import utcnow
from shared.db import SessionMaker, UtcDateTime, dialect_of
from shared.events import Event, Service

log = logging.getLogger(__name__)

PENDING_EVENTS = "outbox.pending_events"
# Published events are marked at most this late, together: one UPDATE for all the events a busy
# process published meanwhile. Only needs to stay well under the relay's grace (seconds): an
# event not yet marked is all the relay would look at.
MARK_BATCH_SECONDS = 0.2

Publish = Callable[[Event], Awaitable[int]]


def outbox_table(metadata: MetaData) -> Table:
    """The ``outbox`` table, declared in the owning service's metadata."""
    table = Table(
        "outbox",
        metadata,
        Column("id", Uuid, primary_key=True),
        Column("type", String(100), nullable=False),
        Column("subject", String(200), nullable=False),
        Column("event", Text, nullable=False),
        Column("created_at", UtcDateTime, nullable=False),
        Column("published_at", UtcDateTime, nullable=True),
    )
    Index(
        "ix_outbox_unpublished",
        table.c.created_at,
        postgresql_where=table.c.published_at.is_(None),
        sqlite_where=table.c.published_at.is_(None),
    )
    return table


def _row(event: Event) -> dict[str, object]:
    return {
        "id": event.id,
        "type": event.type,
        "subject": event.subject,
        "event": event.model_dump_json(),
        "created_at": event.occurred_at,
    }


async def record_events(session: AsyncSession, table: Table, events: Sequence[Event]) -> None:
    """Write ``events`` to the outbox ``table`` in the session's transaction, in one statement.
    Whoever commits the session dispatches them afterwards (a route's unit of work, or the
    event consumer)."""
    if not events:
        return
    rows = [_row(event) for event in events]
    await session.execute(insert(table), rows[0] if len(rows) == 1 else rows)
    session.info.setdefault(PENDING_EVENTS, []).extend(events)


class Outbox:
    def __init__(
        self,
        table: Table,
        producer: Service,
        sessions: SessionMaker | None = None,
        publish: Publish | None = None,
    ) -> None:
        """The one recorder of ``producer``'s events. With only ``table`` and ``producer``, an
        outbox that records (for code running inside a consumer's transaction, which dispatches
        after commit); with sessions and ``publish``, one that also publishes and relays."""
        self.table = table
        self.producer = producer
        self.sessions = sessions
        self.publish = publish
        self._in_flight: set[asyncio.Task[None]] = set()
        # Published but not yet marked: marked together, one UPDATE for many requests.
        self._to_mark: list[UUID] = []
        self._marker: asyncio.Task[None] | None = None

    async def record(self, session: AsyncSession, events: Sequence[Event]) -> None:
        """Write ``events`` in the session's transaction; they are dispatched once it commits."""
        await record_events(session, self.table, events)

    def take_pending(self, session: AsyncSession) -> list[Event]:
        events: list[Event] = session.info.pop(PENDING_EVENTS, [])
        return events

    def dispatch(self, events: Sequence[Event]) -> None:
        """Publish committed events in the background (the fast path)."""
        if not events or self.publish is None:
            return
        self._track(asyncio.create_task(self._publish_and_mark(list(events))))

    def _track(self, task: asyncio.Task[None]) -> None:
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def drain(self) -> None:
        """Wait for background publishes (at shutdown, and in tests)."""
        while self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)

    async def _publish_and_mark(self, events: list[Event]) -> None:
        assert self.publish is not None
        published: list[UUID] = []
        try:
            for event in events:
                await self.publish(event)
                published.append(event.id)
        except Exception:
            # The relay will pick up what was not published.
            log.warning("outbox fast path failed; the relay will retry", exc_info=True)
        if published:
            self._to_mark.extend(published)
            if self._marker is None or self._marker.done():
                self._marker = asyncio.create_task(self._mark_batches())
                self._track(self._marker)

    async def _mark_batches(self) -> None:
        """Mark what was published, gathering concurrent requests' events into one UPDATE (an
        unmarked event is only published again by the relay, which consumers absorb)."""
        while self._to_mark:
            await asyncio.sleep(MARK_BATCH_SECONDS)
            ids, self._to_mark = self._to_mark, []
            try:
                await self._mark_published(ids)
            except Exception:
                log.warning("could not mark events published; they will be published again", exc_info=True)

    async def _mark_published(self, ids: list[UUID]) -> None:
        assert self.sessions is not None
        async with self.sessions() as session, session.begin():
            await session.execute(
                update(self.table).where(self.table.c.id.in_(ids)).values(published_at=utcnow())
            )

    async def relay_once(self, *, grace_seconds: float, batch_size: int = 500) -> int:
        """Publish events left unpublished for longer than ``grace_seconds``; returns how many."""
        assert self.publish is not None and self.sessions is not None
        cutoff = utcnow() - timedelta(seconds=grace_seconds)
        async with self.sessions() as session, session.begin():
            query = (
                select(self.table.c.id, self.table.c.event)
                .where(self.table.c.published_at.is_(None), self.table.c.created_at <= cutoff)
                .order_by(self.table.c.created_at)
                .limit(batch_size)
            )
            if dialect_of(session) == "postgresql":
                # Several relays may run (one per worker): each takes different rows.
                query = query.with_for_update(skip_locked=True)
            rows = (await session.execute(query)).all()
            for row in rows:
                await self.publish(Event.model_validate_json(row.event))
            if rows:
                await session.execute(
                    update(self.table)
                    .where(self.table.c.id.in_([row.id for row in rows]))
                    .values(published_at=utcnow())
                )
        return len(rows)

    async def replay_recent(self, within_seconds: float) -> int:
        """Mark the events published in the last ``within_seconds`` unpublished again, so the
        relay publishes them anew (Redis lost the jobs: consumers absorb those already applied)."""
        assert self.sessions is not None
        since = utcnow() - timedelta(seconds=within_seconds)
        async with self.sessions() as session, session.begin():
            result = await session.execute(
                update(self.table).where(self.table.c.published_at > since).values(published_at=None)
            )
        return int(getattr(result, "rowcount", 0) or 0)

    async def run_relay(
        self,
        *,
        interval_seconds: float,
        grace_seconds: float,
        queues_lost: Callable[[], Awaitable[bool]] | None = None,
        replay_window_seconds: float = 0.0,
    ) -> None:
        """Relay forever (until cancelled), surviving database and Redis outages. With
        ``queues_lost`` (true once after Redis lost its data: a restart without its file, a
        flush), the events published in the last ``replay_window_seconds`` are published again:
        their jobs may have been lost with it, queued, deferred for a retry, or running."""
        while True:
            try:
                if queues_lost is not None and await queues_lost():
                    count = await self.replay_recent(replay_window_seconds)
                    log.warning("Redis lost its queues: publishing the last %s events again", count)
                while await self.relay_once(grace_seconds=grace_seconds) > 0:
                    pass
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("outbox relay pass failed; retrying", exc_info=True)
            await asyncio.sleep(interval_seconds)
