"""From ticket_api through Redis to billing's worker and on to the notifier's queue: an hourly
ticket closed in ticket_api is invoiced once, however often its events are delivered."""

from __future__ import annotations

from pathlib import Path

import httpx
from redis.asyncio import Redis
from sqlalchemy import func, select, update

from services.billing.context import Billing
from services.billing.models import Invoice
from services.billing.models import outbox as billing_outbox
from services.billing.models import processed_event as billing_processed
from services.billing.settings import Settings as BillingSettings
from services.billing.tasks import build_handlers, close_due_periods, settle_due_closes
from services.ticket_api.app import create_app as create_ticket_api
from services.ticket_api.db import outbox as ticket_api_outbox
from services.ticket_api.settings import Settings as TicketApiSettings
from shared import events as ev
from shared.ids import new_id
from shared.queue import queue_name
from shared.runtime import Runtime
from tests import auth
from tests.conftest import truncate_schema
from tests.fixtures.workers import drain


async def drain_billing(settings: BillingSettings) -> None:
    await drain(
        ev.Service.BILLING,
        settings,
        outbox=billing_outbox,
        processed_event=billing_processed,
        handlers=build_handlers(Billing(settings)),
    )


async def test_a_closed_hourly_ticket_is_invoiced_once_through_the_queues(
    postgres_url: str, redis_url: str, redis: Redis, tmp_path: Path
) -> None:
    for schema in ("ticket_api", "billing"):
        await truncate_schema(postgres_url, schema)
    common = {"database_url": postgres_url, "redis_url": redis_url, "var_dir": tmp_path, "env": "test"}
    billing_settings = BillingSettings(**common, close_settle_delay_seconds=0)
    agent_id = new_id()
    admin = auth.bearer(auth.admin(agent_id))

    app = create_ticket_api(TicketApiSettings(**common))
    async with app.router.lifespan_context(app):
        runtime: Runtime = app.state.runtime
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t.test"
        ) as client:
            agent = await client.post(
                "/api/v1/agents", json={"email": "alice@helpdesk.test", "name": "Alice"}, headers=admin
            )
            assert agent.status_code == 201, agent.text
            alice = auth.bearer(auth.agent(agent.json()["id"]))
            org = await client.post(
                "/api/v1/organizations",
                json={"name": "Acme", "support_tier": "hourly", "email_domains": ["acme.test"]},
                headers=admin,
            )
            ticket = await client.post(
                "/api/v1/tickets",
                json={
                    "contact": {"email": "jane@acme.test"},
                    "subject": "Printer",
                    "description": "Down",
                    "urgency": "high",
                },
                headers=admin,
            )
            ticket_id = ticket.json()["id"]
            logged = await client.post(
                f"/api/v1/tickets/{ticket_id}/time-entries",
                json={"minutes": 50, "description": "Fixed it"},
                headers=alice,
            )
            assert logged.status_code == 201, logged.text
            for status in ("open", "closed"):
                moved = await client.post(
                    f"/api/v1/tickets/{ticket_id}/status", json={"status": status}, headers=alice
                )
                assert moved.status_code == 200, moved.text
            await runtime.outbox.drain()
            assert org.status_code == 201

            await drain_billing(billing_settings)
            # Everything ticket_api ever published, published again (a relay after a crash).
            async with runtime.sessions() as session, session.begin():
                await session.execute(update(ticket_api_outbox).values(published_at=None))
            for key in await redis.keys("arq:*"):
                await redis.delete(key)
            assert await runtime.outbox.relay_once(grace_seconds=0) > 0
            await drain_billing(billing_settings)

    billing_runtime = await Runtime.open(billing_settings, billing_outbox)
    try:
        ctx = {"runtime": billing_runtime}
        assert await settle_due_closes(ctx) == 1
        assert await settle_due_closes(ctx) == 0
        await close_due_periods(ctx)  # nothing due for an hourly account, and harmless
        await billing_runtime.outbox.drain()
        async with billing_runtime.sessions() as session:
            invoice = (await session.scalars(select(Invoice))).one()
            assert await session.scalar(select(func.count()).select_from(Invoice)) == 1
            issued = (
                await session.execute(
                    select(billing_outbox.c.id, billing_outbox.c.published_at).where(
                        billing_outbox.c.type == "invoice.issued"
                    )
                )
            ).one()
    finally:
        await billing_runtime.close()
    assert invoice.ticket_number == ticket.json()["number"] and invoice.total_cents == 15000
    assert issued.published_at is not None, "published to the notifier right after commit"
    assert await redis.exists(f"arq:job:{issued.id}:{queue_name(ev.Service.NOTIFIER)}")
    assert await redis.zcard(queue_name(ev.Service.BILLING)) == 0
