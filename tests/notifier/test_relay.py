"""Mail leaves over kept-open connections to the relay, and mail due at once is sent by the
worker that recorded it, without a trip through the queue."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from email.mime.text import MIMEText
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from services.notifier.compose import OutgoingMail, flatten
from services.notifier.delivery import sweep
from services.notifier.delivery.email import send_claimed
from services.notifier.delivery_policy import LEASE
from services.notifier.dispatch import Job
from services.notifier.models import DeliveryState
from services.notifier.smtp import Relay
from tests.notifier.conftest import NOTIFIER_QUEUE, Env, TicketStory, organization


@dataclass
class CountingRelay:
    """Accepts everything; counts the connections it was opened and the messages it got."""

    connections: int = 0
    delivered: list[str] = field(default_factory=list)
    servers: list[SMTP] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.delivered.extend(envelope.rcpt_tos)
        return "250 OK"

    def drop_connections(self) -> None:
        """What a relay does to connections idle too long."""
        for server in self.servers:
            if server.transport is not None:
                server.transport.close()


@pytest.fixture
async def counting(env: Env) -> AsyncIterator[tuple[CountingRelay, Relay]]:
    handler = CountingRelay()
    loop = asyncio.get_running_loop()

    def factory() -> Any:
        handler.connections += 1
        server = SMTP(handler, hostname="counting.relay.test", loop=loop)
        handler.servers.append(server)
        return server

    server = await loop.create_server(factory, "127.0.0.1", 0)
    settings = env.settings.model_copy(update={"smtp_port": server.sockets[0].getsockname()[1]})
    relay = Relay(settings)
    yield handler, relay
    await relay.aclose()
    server.close()
    await server.wait_closed()


def message(n: int) -> OutgoingMail:
    text = MIMEText("Hello")
    text["Subject"] = f"Message {n}"
    return OutgoingMail("support@helpdesk.test", (f"customer{n}@acme.test",), flatten(text))


async def test_messages_one_after_another_share_one_connection(
    counting: tuple[CountingRelay, Relay],
) -> None:
    handler, relay = counting
    for n in range(5):
        assert (await relay.send(message(n))).startswith("OK")
    assert handler.delivered == [f"customer{n}@acme.test" for n in range(5)]
    assert handler.connections == 1


async def test_messages_at_the_same_time_get_connections_of_their_own(
    counting: tuple[CountingRelay, Relay],
) -> None:
    handler, relay = counting
    await asyncio.gather(*(relay.send(message(n)) for n in range(4)))
    assert sorted(handler.delivered) == sorted(f"customer{n}@acme.test" for n in range(4))
    assert handler.connections == 4
    await asyncio.gather(*(relay.send(message(n)) for n in range(4, 8)))
    assert handler.connections == 4, "the four idle connections are used again"


async def test_a_connection_the_relay_closed_is_replaced_without_losing_the_message(
    counting: tuple[CountingRelay, Relay],
) -> None:
    handler, relay = counting
    await relay.send(message(1))
    handler.drop_connections()
    await asyncio.sleep(0.05)
    await relay.send(message(2))
    assert handler.delivered == ["customer1@acme.test", "customer2@acme.test"]
    assert handler.connections == 2


async def test_mail_due_at_once_is_sent_by_the_worker_itself_not_queued(env: Env) -> None:
    await env.consumer.consume(TicketStory(org=organization(sla_signed=True)).created())
    assert await env.redis.zcard(NOTIFIER_QUEUE) == 0, "no job: the worker sends it right after the commit"
    await env.notifier.dispatcher.drain()
    [ack] = await env.notifications()
    assert (ack.state, ack.attempts) == (DeliveryState.SENT, 1)
    [mail] = env.mail()
    assert str(mail["X-Helpdesk-Notification"]).strip().startswith("acknowledgment;")


async def test_an_api_process_queues_mail_for_the_worker(env: Env) -> None:
    env.notifier.dispatcher.run_here = None  # what open_notifier(worker=False) gives the API
    await env.consumer.consume(TicketStory(org=organization(sla_signed=True)).created())
    await env.notifier.dispatcher.drain()
    assert await env.redis.zcard(NOTIFIER_QUEUE) == 1
    assert env.mail() == []
    await env.run_worker()
    [ack] = await env.notifications()
    assert ack.state == DeliveryState.SENT and len(env.mail()) == 1


async def test_mail_born_claimed_whose_worker_died_before_sending_is_sent_by_the_sweeper(env: Env) -> None:
    async def dies_before_sending(job: Job) -> str:
        return "lost"  # the process is gone between the commit and the send

    env.notifier.dispatcher.run_here = dies_before_sending
    await env.consumer.consume(TicketStory(org=organization(sla_signed=True)).created())
    await env.notifier.dispatcher.drain()
    [ack] = await env.notifications()
    assert (ack.state, ack.attempts) == (DeliveryState.SENDING, 1), "claimed by the transaction that wrote it"
    assert await sweep(env.notifier, grace=timedelta(0)) == 0, "its lease still runs"

    env.clock.advance(seconds=LEASE.total_seconds() + 1)
    assert await sweep(env.notifier, grace=timedelta(0)) == 1
    env.notifier.dispatcher.run_here = None
    await env.run_worker()
    [ack] = await env.notifications()
    assert (ack.state, ack.attempts) == (DeliveryState.SENT, 2)
    assert len(env.mail()) == 1


async def test_a_claim_that_waited_too_long_for_a_slot_is_renewed_or_given_up(env: Env) -> None:
    """Mail born claimed waits for a free sending slot; if its lease ran out meanwhile and the
    sweeper's attempt took the row, the waiting send must not send it a second time."""
    held: list[Job] = []

    async def holds(job: Job) -> str:
        held.append(job)  # no free slot: the send waits
        return "waiting"

    env.notifier.dispatcher.run_here = holds
    first, second = (
        TicketStory(org=organization(sla_signed=True), contact_email=f"c{n}@acme.test") for n in (1, 2)
    )
    await env.consumer.consume(first.created())
    await env.consumer.consume(second.created())
    await env.notifier.dispatcher.drain()
    late_first, late_second = held

    env.clock.advance(seconds=LEASE.total_seconds() + 1)
    await sweep(env.notifier, grace=timedelta(0))  # the first's lease ran out: another attempt …
    env.notifier.dispatcher.run_here = None
    await env.run_worker()  # … sends it (both rows, as both leases ran out)
    assert len(env.mail()) == 2

    assert await send_claimed(env.notifier, late_first.claimed) == "skipped"
    assert await send_claimed(env.notifier, late_second.claimed) == "skipped"
    assert len(env.mail()) == 2, "nothing sent twice"


async def test_a_claim_that_waited_but_is_still_ours_is_renewed_and_sent(env: Env) -> None:
    held: list[Job] = []

    async def holds(job: Job) -> str:
        held.append(job)
        return "waiting"

    env.notifier.dispatcher.run_here = holds
    await env.consumer.consume(TicketStory(org=organization(sla_signed=True)).created())
    await env.notifier.dispatcher.drain()
    [late] = held
    env.clock.advance(seconds=LEASE.total_seconds() * 0.75)  # most of the lease gone, nobody else
    assert await send_claimed(env.notifier, late.claimed) == "sent"
    [ack] = await env.notifications()
    assert (ack.state, ack.attempts) == (DeliveryState.SENT, 1)
    assert len(env.mail()) == 1
