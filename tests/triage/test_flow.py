"""The whole loop on real PostgreSQL and Redis with burst-mode workers: ticket_api creates a
ticket, triage decides, ticket_api applies the decision and announces the change; triage is
not sent back a decision applied as it asked (one applied otherwise it is), and decides only
once."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select

from services.ticket_api.app import create_app as create_ticket_api
from services.ticket_api.db import outbox as ticket_api_outbox
from services.ticket_api.db import processed_event as ticket_api_processed
from services.ticket_api.settings import Settings as TicketApiSettings
from services.ticket_api.tasks import HANDLERS as TICKET_API_HANDLERS
from services.triage.models import TriageDecision
from services.triage.models import outbox as triage_outbox
from services.triage.models import processed_event as triage_processed
from services.triage.settings import Settings as TriageSettings
from services.triage.tasks import build_handlers
from shared.events import Service
from shared.queue import queue_name
from shared.runtime import Runtime
from tests import auth
from tests.conftest import truncate_schema
from tests.fixtures.workers import drain

ADMIN = auth.bearer(auth.admin())
ALWAYS = {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


@pytest.mark.parametrize("consultant_leaves_first", [False, True], ids=["as-asked", "consultant-gone"])
async def test_a_ticket_is_triaged_and_applied_once_without_a_loop(
    postgres_url: str, redis_url: str, redis: Redis, tmp_path: Path, consultant_leaves_first: bool
) -> None:
    for schema in ("ticket_api", "triage"):
        await truncate_schema(postgres_url, schema)
    common = {"database_url": postgres_url, "redis_url": redis_url, "var_dir": tmp_path, "env": "test"}
    ticket_api_settings, triage_settings = TicketApiSettings(**common), TriageSettings(**common)

    async def run_triage() -> None:
        await drain(
            Service.TRIAGE,
            triage_settings,
            handlers=build_handlers(triage_settings),
            outbox=triage_outbox,
            processed_event=triage_processed,
        )

    async def run_ticket_api() -> None:
        await drain(
            Service.TICKET_API,
            ticket_api_settings,
            handlers=TICKET_API_HANDLERS,
            outbox=ticket_api_outbox,
            processed_event=ticket_api_processed,
        )

    app = create_ticket_api(ticket_api_settings)
    async with app.router.lifespan_context(app):
        runtime: Runtime = app.state.runtime
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t.test"
        ) as client:
            agent = await client.post(
                "/api/v1/agents",
                json={
                    "email": "alice@helpdesk.test",
                    "name": "Alice",
                    "skills": ["printers"],
                    "working_hours": ALWAYS,
                },
                headers=ADMIN,
            )
            assert agent.status_code == 201, agent.text
            await runtime.outbox.drain()
            await run_triage()  # the roster first

            created = await client.post(
                "/api/v1/tickets",
                json={
                    "contact": {"email": "jane@acme.test"},
                    "subject": "Printer offline",
                    "description": "Urgent!",
                    "urgency": "high",
                    "category": "printers",
                },
                headers=ADMIN,
            )
            assert created.status_code == 201, created.text
            await runtime.outbox.drain()
            await run_triage()  # decides: ticket.triaged
            if consultant_leaves_first:
                left = await client.patch(
                    f"/api/v1/agents/{agent.json()['id']}", json={"active": False}, headers=ADMIN
                )
                assert left.status_code == 200, left.text
                await runtime.outbox.drain()
                await run_triage()  # agent.updated
            notifier_jobs = await redis.zcard(queue_name(Service.NOTIFIER))
            await run_ticket_api()  # applies it: ticket.updated
            assert await redis.zcard(queue_name(Service.NOTIFIER)) == notifier_jobs + 1, "notifier hears it"
            # Applied as asked: triage holds it already. Applied otherwise: triage must hear it.
            back_to_triage = await redis.zcard(queue_name(Service.TRIAGE))
            await run_triage()
            await run_ticket_api()

            ticket = (await client.get(f"/api/v1/tickets/{created.json()['id']}", headers=ADMIN)).json()
            if consultant_leaves_first:
                assert back_to_triage == 1, "the decision was not applied as asked: triage hears it"
                assert (ticket["priority"], ticket["assignee_id"]) == ("P2", None)
            else:
                assert back_to_triage == 0, "triage's own decision is not sent back to it"
                assert (ticket["priority"], ticket["assignee_id"]) == ("P2", agent.json()["id"])

    triage_runtime = await Runtime.open(triage_settings, triage_outbox)
    try:
        async with triage_runtime.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(TriageDecision)) == 1
    finally:
        await triage_runtime.close()
    for service in (Service.TRIAGE, Service.TICKET_API):
        assert await redis.zcard(queue_name(service)) == 0
