"""What billing's jobs (the consumer's handlers, the crons, the period close) need besides the
data: the settings, and the one recorder of billing's events. A job wraps each session it
opens in a unit of work over that recorder (:meth:`Billing.unit_of_work`); the rules record
with ``uow.emit``. Routes get theirs from the runtime (``deps.Uow``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from services.billing.models import outbox
from services.billing.settings import Settings
from shared.events import Service
from shared.outbox import Outbox
from shared.uow import UnitOfWork


def recorder() -> Outbox:
    """An outbox that only records, for work inside the event consumer's transaction (the
    consumer publishes after its commit)."""
    return Outbox(outbox, Service.BILLING)


@dataclass(frozen=True)
class Billing:
    settings: Settings
    # The runtime's outbox in a worker (it also publishes), else one that only records.
    outbox: Outbox = field(default_factory=recorder)

    def unit_of_work(self, session: AsyncSession) -> UnitOfWork:
        return UnitOfWork(session, self.outbox)
