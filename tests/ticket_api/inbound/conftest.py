"""An Inbound (the one code path of SMTP and the API) on a real database, with a clock the
test moves, and two organizations: Acme (acme.test, SLA not signed) and Globex (globex.test)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import select

from services.ticket_api.caller import Caller
from services.ticket_api.db import outbox
from services.ticket_api.inbound.models import InboundEmail
from services.ticket_api.inbound.service import Envelope, Inbound
from services.ticket_api.organizations import service as organization_service
from services.ticket_api.organizations.schemas import OrganizationCreate
from services.ticket_api.settings import Settings
from services.ticket_api.tickets import service as ticket_service
from services.ticket_api.tickets.models import Message, Ticket
from shared.events import Event
from shared.mail_ids import make_message_id, make_reply_token, plus_address
from shared.runtime import Runtime
from shared.uow import UnitOfWork
from tests import auth

SMTP_ENVELOPE = Envelope(sender="jane@acme.test", recipients=("support@helpdesk.test",))


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class InboundWorld:
    settings: Settings
    runtime: Runtime
    inbound: Inbound
    clock: Clock
    acme_id: UUID
    globex_id: UUID

    @property
    def secret(self) -> str:
        return self.settings.secret_key.get_secret_value()

    def our_message_id(self, ticket_id: UUID) -> str:
        return make_message_id(ticket_id, secret=self.secret, domain="helpdesk.test")

    def reply_address(self, ticket_id: UUID) -> str:
        return plus_address("support@helpdesk.test", make_reply_token(ticket_id, secret=self.secret))

    async def receive(self, raw: bytes, envelope: Envelope = SMTP_ENVELOPE) -> Any:
        return await self.inbound.receive(raw, envelope)

    async def ticket(self, ticket_id: UUID) -> Ticket:
        async with self.runtime.sessions() as session:
            ticket = await session.get(Ticket, ticket_id)
            assert ticket is not None
            return ticket

    async def tickets(self) -> list[Ticket]:
        async with self.runtime.sessions() as session:
            return list((await session.scalars(select(Ticket).order_by(Ticket.number))).all())

    async def messages(self, ticket_id: UUID) -> list[Message]:
        async with self.runtime.sessions() as session:
            rows = await session.scalars(
                select(Message).where(Message.ticket_id == ticket_id).order_by(Message.id)
            )
            return list(rows.all())

    async def inbound_rows(self) -> list[InboundEmail]:
        async with self.runtime.sessions() as session:
            return list((await session.scalars(select(InboundEmail).order_by(InboundEmail.id))).all())

    async def events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        async with self.runtime.sessions() as session:
            rows = await session.execute(select(outbox.c.type, outbox.c.event).order_by(outbox.c.created_at))
            events = [Event.model_validate_json(row.event) for row in rows]
            return [{"type": e.type, **e.data} for e in events if event_type is None or e.type == event_type]

    async def close_ticket(self, ticket_id: UUID) -> None:
        caller = Caller(principal=auth.admin(), request_id=None)
        async with self.runtime.sessions() as session:
            uow = UnitOfWork(session, self.runtime.outbox)
            from services.ticket_api.tickets.schemas import StatusChange
            from shared.vocabulary import TicketStatus

            await ticket_service.change_status(
                uow, caller, ticket_id, StatusChange(status=TicketStatus.CLOSED)
            )
            await uow.commit()


@pytest.fixture
async def world(database_url: str, redis_url: str, tmp_path: Path) -> AsyncIterator[InboundWorld]:
    settings = Settings(
        database_url=database_url,
        redis_url=redis_url,
        var_dir=tmp_path,
        env="test",
        attachment_max_bytes=64 * 1024,
        attachment_max_count=3,
        attachment_max_total_bytes=128 * 1024,
        ack_limit_per_sender=3,
        ack_limit_window_minutes=60,
    )
    runtime = await Runtime.open(settings, outbox)
    clock = Clock(datetime.now(UTC))
    inbound = Inbound(sessions=runtime.sessions, outbox=runtime.outbox, settings=settings, clock=clock)
    caller = Caller(principal=auth.admin(), request_id=None)
    ids = []
    async with runtime.sessions() as session:
        uow = UnitOfWork(session, runtime.outbox)
        for name, domain, signed in (("Acme", "acme.test", False), ("Globex", "globex.test", True)):
            organization, _ = await organization_service.create_organization(
                uow,
                caller,
                OrganizationCreate(
                    name=name, support_tier="hourly", email_domains=[domain], sla_signed=signed
                ),
            )
            ids.append(organization.id)
        await uow.commit()
    try:
        yield InboundWorld(settings, runtime, inbound, clock, ids[0], ids[1])
    finally:
        await runtime.outbox.drain()
        await runtime.close()
