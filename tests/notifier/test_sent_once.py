"""A mail the relay accepted just as the database went down (the probe's four duplicates): the
"sent" is written once the database is back, and an attempt that finds the row meanwhile (its
lease run out, the sweeper) records it instead of sending it a second time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from deploy.local.probes import free_ports
from services.notifier.delivery import sweep
from services.notifier.models import DeliveryState
from services.notifier.smtp import Relay
from shared.db import create_engine, single_statement_maker
from tests.notifier.conftest import Env, TicketStory, organization


class DatabaseDownOnAccept:
    """A relay that accepts each mail at the very moment the notifier's database stops answering
    (its one-statement writes then go to a port where nothing listens)."""

    def __init__(self, env: Env) -> None:
        self.env = env
        self.delivered: list[str] = []
        self.working = env.notifier.single_statements
        (port,) = free_ports(1)
        self.dead = create_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{port}/gone", schema="notifier")

    def database_back(self) -> None:
        self.env.notifier.single_statements = self.working

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.delivered.append(
            envelope.content.decode(errors="replace") if isinstance(envelope.content, bytes) else ""
        )
        self.env.notifier.single_statements = single_statement_maker(self.dead)
        return "250 OK"


@pytest.fixture
async def relay(env: Env) -> AsyncIterator[DatabaseDownOnAccept]:
    handler = DatabaseDownOnAccept(env)
    loop = asyncio.get_running_loop()

    def factory() -> Any:
        return SMTP(handler, hostname="relay.test", loop=loop)

    server = await loop.create_server(factory, "127.0.0.1", 0)
    env.notifier.settings = env.settings.model_copy(update={"smtp_port": server.sockets[0].getsockname()[1]})
    env.notifier.relay = Relay(env.notifier.settings)
    yield handler
    server.close()
    await server.wait_closed()
    await handler.dead.dispose()


async def test_a_mail_accepted_as_the_database_goes_down_is_recorded_later_and_sent_once(
    env: Env, relay: DatabaseDownOnAccept
) -> None:
    await env.deliver(TicketStory(org=organization(sla_signed=True)).created())
    assert len(relay.delivered) == 1
    [ack] = await env.notifications()
    assert ack.state == DeliveryState.SENDING, "the sent could not be written"
    assert ack.id in env.notifier.sent_unrecorded

    # The lease runs out: the sweeper finds the row and a new attempt claims it, as after the
    # probe's PostgreSQL restart. It records the mail sent instead of handing it over again.
    for retrying in list(env.notifier._recording):  # its background retry has not come round yet
        retrying.cancel()
    relay.database_back()
    env.clock.advance(seconds=61)
    assert await sweep(env.notifier, grace=timedelta(0)) == 1
    await env.run_worker()
    [ack] = await env.notifications()
    assert ack.state == DeliveryState.SENT and ack.attempts == 2
    assert len(relay.delivered) == 1, "never sent twice"
    assert env.notifier.sent_unrecorded == {}
    assert "<" in ack.message_id and ack.message_id in relay.delivered[0], "the same Message-ID throughout"


async def test_the_sent_is_written_in_the_background_once_the_database_is_back(
    env: Env, relay: DatabaseDownOnAccept
) -> None:
    await env.deliver(TicketStory(org=organization(sla_signed=True)).created())
    [ack] = await env.notifications()
    assert ack.state == DeliveryState.SENDING
    await asyncio.sleep(1.0)  # a retry or two against the dead database
    relay.database_back()
    for _ in range(100):
        [ack] = await env.notifications()
        if ack.state == DeliveryState.SENT:
            break
        await asyncio.sleep(0.1)
    assert ack.state == DeliveryState.SENT and ack.attempts == 1
    assert env.notifier.sent_unrecorded == {}
    assert len(relay.delivered) == 1
