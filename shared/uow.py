"""A unit of work: one session, one commit, and the events recorded in it.

Repositories and services only flush; the route (or job) that opened the unit of work
commits exactly once, and only then are the recorded events published.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from shared.events import Event
from shared.outbox import Outbox


class UnitOfWork:
    def __init__(self, session: AsyncSession, outbox: Outbox) -> None:
        self.session = session
        self.outbox = outbox

    async def record(self, event: Event) -> None:
        """Write ``event`` to the outbox in this transaction."""
        await self.outbox.record(self.session, event)

    async def commit(self) -> None:
        await self.session.commit()
        self.outbox.dispatch(self.outbox.take_pending(self.session))

    async def rollback(self) -> None:
        await self.session.rollback()
        self.outbox.take_pending(self.session)
