"""A relay that refuses: 4xx is retried with backoff, 5xx for an address fails and suppresses it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from services.notifier import repository as repo
from services.notifier.delivery import sweep
from services.notifier.models import DeliveryState
from services.notifier.smtp import Relay
from tests.notifier.conftest import Env, TicketStory, organization


class PickyRelay:
    """Refuses bounce@… for good (550) and later@… once for now (451); accepts the rest."""

    def __init__(self) -> None:
        self.delivered: list[list[str]] = []
        self.temporary_refusals = {"later@acme.test": 1}

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.startswith("bounce@"):
            return "550 5.1.1 <bounce@acme.test>: no such user"
        if self.temporary_refusals.get(address, 0) > 0:
            self.temporary_refusals[address] -= 1
            return "451 4.7.1 greylisted, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.delivered.append(list(envelope.rcpt_tos))
        return "250 OK"


@pytest.fixture
async def relay(env: Env) -> AsyncIterator[PickyRelay]:
    handler = PickyRelay()
    loop = asyncio.get_running_loop()

    def factory() -> Any:
        return SMTP(handler, hostname="picky.relay.test", loop=loop)

    server = await loop.create_server(factory, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    env.notifier.settings = env.settings.model_copy(update={"smtp_port": port})
    env.notifier.relay = Relay(env.notifier.settings)
    yield handler
    server.close()
    await server.wait_closed()


async def test_a_permanent_refusal_fails_and_suppresses_the_address(env: Env, relay: PickyRelay) -> None:
    story = TicketStory(org=organization(sla_signed=True), contact_email="bounce@acme.test")
    await env.deliver(story.created())
    [ack] = await env.notifications()
    assert (ack.state, ack.smtp_code, ack.attempts) == (DeliveryState.FAILED, 550, 1)
    assert "no such user" in (ack.last_error or "")
    async with env.runtime.sessions() as session:
        suppression = await repo.get_suppression(session, "bounce@acme.test")
    assert suppression is not None and suppression.smtp_code == 550 and suppression.notification_id == ack.id

    await env.deliver(story.closed())
    _, closure = await env.notifications()
    assert closure.state == DeliveryState.SUPPRESSED and "suppressed" in (closure.last_error or "")
    assert relay.delivered == []


async def test_a_temporary_refusal_is_retried_after_the_backoff(env: Env, relay: PickyRelay) -> None:
    story = TicketStory(org=organization(sla_signed=True), contact_email="later@acme.test")
    await env.deliver(story.created())
    [ack] = await env.notifications()
    assert (ack.state, ack.attempts) == (DeliveryState.PENDING, 1)
    assert "451" in (ack.last_error or "")
    assert ack.next_attempt_at == env.clock() + timedelta(seconds=30)

    env.clock.advance(seconds=31)
    assert await sweep(env.notifier, grace=timedelta(0)) == 1
    await env.run_worker()
    [ack] = await env.notifications()
    assert (ack.state, ack.attempts, ack.last_error) == (DeliveryState.SENT, 2, None)
    assert relay.delivered == [["later@acme.test"]]


async def test_a_relay_that_is_down_is_retried(env: Env) -> None:
    env.notifier.settings = env.settings.model_copy(update={"smtp_port": 9})  # nothing listens there
    env.notifier.relay = Relay(env.notifier.settings)
    await env.deliver(TicketStory(org=organization(sla_signed=True)).created())
    [ack] = await env.notifications()
    assert ack.state == DeliveryState.PENDING and ack.attempts == 1 and ack.last_error
    assert len(env.mail()) == 0
