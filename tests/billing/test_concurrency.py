"""Concurrent closes for one organization on PostgreSQL: no lost update, no duplicate number."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from services.billing.models import ChargeKind
from services.billing.settlement import settle_ticket
from shared import events as ev
from shared.consumer import Outcome
from tests.billing.harness import Harness, Story

LATER = datetime(2026, 11, 30, tzinfo=UTC)


async def _settle_all_at_once(pg: Harness, ticket_ids: list) -> None:
    async def one(ticket_id: object) -> None:
        async with pg.sessions() as session:
            uow = pg.billing.unit_of_work(session)
            await settle_ticket(uow, pg.billing.settings, ticket_id, now=LATER)  # type: ignore[arg-type]
            await uow.commit()

    await asyncio.gather(*(one(ticket_id) for ticket_id in ticket_ids))


async def test_concurrent_hourly_closes_get_distinct_consecutive_numbers(pg: Harness) -> None:
    story = Story()
    acme, created = story.organization("Acme", "hourly")
    await pg.deliver(created)
    tickets = [story.ticket(acme) for _ in range(12)]
    for ticket in tickets:
        await pg.deliver(story.log(ticket, 45)[1], story.close(ticket))
    await _settle_all_at_once(pg, [ticket.id for ticket in tickets])
    invoices = await pg.invoices()
    assert sorted(invoice.number for invoice in invoices) == [f"INV-2026-{n:06d}" for n in range(1, 13)]
    assert sorted(invoice.ticket_number for invoice in invoices) == sorted(t.number for t in tickets)


async def test_concurrent_block_draws_lose_no_minute(pg: Harness) -> None:
    story = Story()
    initech, created = story.organization("Initech", "block")  # 1200 prepaid minutes
    await pg.deliver(created)
    tickets = [story.ticket(initech) for _ in range(13)]
    for ticket in tickets:
        await pg.deliver(story.log(ticket, 100)[1], story.close(ticket))  # 105 billed each
    await _settle_all_at_once(pg, [ticket.id for ticket in tickets])
    assert await pg.charged(initech.id, ChargeKind.BLOCK) == 1200
    assert await pg.charged(initech.id, ChargeKind.BLOCK_OVERAGE) == 13 * 105 - 1200
    assert len(await pg.outbox_events(ev.EventType.BLOCK_LOW)) == 1
    assert len(await pg.outbox_events(ev.EventType.BLOCK_EXHAUSTED)) == 1


async def test_the_same_event_delivered_concurrently_applies_once(pg: Harness) -> None:
    story = Story()
    acme, created = story.organization("Acme", "hourly")
    ticket = story.ticket(acme)
    _, logged = story.log(ticket, 30)
    outcomes = await asyncio.gather(
        *(pg.consumer.consume(e) for e in (created, created, logged, logged, logged))
    )
    assert sorted(outcomes) == sorted(
        [Outcome.APPLIED, Outcome.DUPLICATE, Outcome.APPLIED] + [Outcome.DUPLICATE] * 2
    )
    snapshot = await pg.snapshot()
    assert [row[2] for row in snapshot["usage"]] == [30]
