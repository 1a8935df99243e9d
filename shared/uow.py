"""A unit of work: one session, one commit, and the events recorded in it.

Repositories and services only flush; the route (or job) that opened the unit of work
commits exactly once, and only then are the recorded events published. ``emit`` is the one
way a service records an event: it builds it (checking the payload is the registered one)
and writes it to the outbox in the same transaction as the change it announces.
"""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from shared.events import Event, EventType, Payload, Service, new_event
from shared.outbox import Outbox


class UnitOfWork:
    def __init__(self, session: AsyncSession, outbox: Outbox) -> None:
        self.session = session
        self.outbox = outbox

    async def emit(
        self,
        event_type: EventType,
        payload: Payload,
        *,
        subject: str,
        request_id: str | None = None,
        known_to: tuple[Service, ...] = (),
        event_id: UUID | None = None,
    ) -> Event:
        """Record one event of this service in this transaction and return it."""
        event = self._event(event_type, payload, subject, request_id, known_to, event_id)
        await self.outbox.record(self.session, [event])
        return event

    async def emit_many(self, items: Iterable[tuple[EventType, Payload, str]]) -> list[Event]:
        """Record many events (type, payload, subject) in one statement: a period close
        announces thousands."""
        events = [self._event(kind, payload, subject, None, (), None) for kind, payload, subject in items]
        await self.outbox.record(self.session, events)
        return events

    def _event(
        self,
        event_type: EventType,
        payload: Payload,
        subject: str,
        request_id: str | None,
        known_to: tuple[Service, ...],
        event_id: UUID | None,
    ) -> Event:
        return new_event(
            event_type,
            payload,
            producer=self.outbox.producer,
            subject=subject,
            request_id=request_id,
            known_to=known_to,
            event_id=event_id,
        )

    async def commit(self) -> None:
        await self.session.commit()
        self.outbox.dispatch(self.outbox.take_pending(self.session))

    async def rollback(self) -> None:
        await self.session.rollback()
        self.outbox.take_pending(self.session)
