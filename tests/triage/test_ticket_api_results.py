"""ticket_api applying triage's results (services/ticket_api/tickets/triage_results.py) on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy import select

from services.ticket_api.app import create_app
from services.ticket_api.db import outbox, processed_event
from services.ticket_api.scheduling import service as scheduling
from services.ticket_api.settings import Settings
from services.ticket_api.tasks import HANDLERS
from services.ticket_api.tickets.models import Ticket
from shared import events as ev
from shared.consumer import EventConsumer
from shared.ids import new_id
from shared.runtime import Runtime
from tests import auth
from tests.conftest import truncate_schema
from tests.fixtures.events import agent_ref, sla_breached, ticket_triaged, triage_breakdown

ADMIN = auth.bearer(auth.admin())


@dataclass
class TicketApi:
    client: httpx.AsyncClient
    runtime: Runtime
    consumer: EventConsumer

    async def ticket(self, ticket_id: str) -> dict[str, Any]:
        response = await self.client.get(f"/api/v1/tickets/{ticket_id}", headers=ADMIN)
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def audit(self, ticket_id: str) -> list[dict[str, Any]]:
        response = await self.client.get(f"/api/v1/tickets/{ticket_id}/audit", headers=ADMIN)
        assert response.status_code == 200, response.text
        body = response.json()
        return list(body["items"] if isinstance(body, dict) else body)

    async def updates(self) -> list[dict[str, Any]]:
        async with self.runtime.sessions() as session:
            rows = await session.execute(
                select(outbox.c.event).where(outbox.c.type == "ticket.updated").order_by(outbox.c.created_at)
            )
            return [ev.Event.model_validate_json(row.event).data for row in rows]


@pytest.fixture
async def ticket_api(postgres_url: str, redis_url: str, tmp_path: Path) -> AsyncIterator[TicketApi]:
    await truncate_schema(postgres_url, "ticket_api")
    settings = Settings(database_url=postgres_url, redis_url=redis_url, var_dir=tmp_path, env="test")
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        runtime: Runtime = app.state.runtime
        consumer = EventConsumer(table=processed_event, sessions=runtime.sessions, handlers=HANDLERS)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ticket-api.test") as client:
            yield TicketApi(client, runtime, consumer)
        await runtime.outbox.drain()


async def _create(api: TicketApi) -> tuple[dict[str, Any], dict[str, Any]]:
    response = await api.client.post(
        "/api/v1/agents",
        json={"email": "alice@helpdesk.test", "name": "Alice", "skills": ["printers"]},
        headers=ADMIN,
    )
    assert response.status_code == 201, response.text
    agent = response.json()
    response = await api.client.post(
        "/api/v1/tickets",
        json={
            "contact": {"email": "jane@acme.test", "name": "Jane"},
            "subject": "Printer offline",
            "description": "Urgent!",
            "urgency": "high",
        },
        headers=ADMIN,
    )
    assert response.status_code == 201, response.text
    return agent, response.json()


def triaged(
    ticket: dict[str, Any],
    priority: str,
    assignee: dict[str, Any] | None,
    *,
    call_customer: bool = False,
    calendar: ev.SlaCalendarV1 | None = None,
) -> ev.Event:
    return ticket_triaged(
        ticket_id=ticket["id"],
        number=ticket["number"],
        subject=ticket["subject"],
        priority=priority,
        assignee=agent_ref(id=assignee["id"], name=assignee["name"], email=assignee["email"])
        if assignee
        else None,
        unassigned_reason=None if assignee else "nobody fits",
        first_response_due_at=datetime(2026, 11, 24, 20, 0, tzinfo=UTC),
        resolution_due_at=datetime(2026, 11, 30, 16, 0, tzinfo=UTC),
        call_customer=call_customer,
        breakdown=triage_breakdown(impact="person", impact_source="inferred", matrix_priority=priority),
        calendar=calendar,
    )


def breached(
    ticket: dict[str, Any], target: str = "first_response", *, escalated_priority: str | None = "P1"
) -> ev.Event:
    return sla_breached(
        ticket_id=ticket["id"],
        number=ticket["number"],
        subject=ticket["subject"],
        target=target,
        target_minutes=240,
        due_at=datetime(2026, 11, 24, 20, 0, tzinfo=UTC),
        escalated_priority=escalated_priority,
        assignee=None,
    )


async def test_a_decision_sets_priority_and_assignee_audited_as_triage(ticket_api: TicketApi) -> None:
    agent, ticket = await _create(ticket_api)
    decision = triaged(ticket, "P2", agent)
    assert await ticket_api.consumer.consume(decision) == "applied"
    assert await ticket_api.consumer.consume(decision) == "duplicate"

    state = await ticket_api.ticket(ticket["id"])
    assert (state["priority"], state["assignee_id"]) == ("P2", agent["id"])
    entry = (await ticket_api.audit(ticket["id"]))[-1]
    assert (entry["actor"], entry["action"]) == ("service:triage", "triaged")
    assert entry["changes"]["priority"] == [None, "P2"]
    assert entry["changes"]["decision_id"] == decision.data["decision_id"]
    (update,) = await ticket_api.updates()
    assert set(update["changed"]) == {"priority", "assignee_id"}, "triage ignores exactly these echoes"

    # The same decision again (a new event, e.g. re-triage on demand): nothing changes, nothing said.
    await ticket_api.consumer.consume(triaged(ticket, "P2", agent))
    assert len(await ticket_api.updates()) == 1


async def test_the_decisions_calendar_is_what_booking_honours(ticket_api: TicketApi) -> None:
    agent, ticket = await _create(ticket_api)
    calendar = ev.SlaCalendarV1(
        timezone="Europe/London", holiday_country="GB", holiday_subdivision="ENG", closed_dates=[]
    )
    await ticket_api.consumer.consume(triaged(ticket, "P2", agent, calendar=calendar))
    async with ticket_api.runtime.sessions() as session:
        stored = await session.get(Ticket, UUID(ticket["id"]))
        assert stored is not None
        closed = scheduling.closed_days_of(stored)
    assert (closed.timezone, closed.holiday_country) == ("Europe/London", "GB")
    assert closed.name_of(date(2026, 8, 31)) == "Late Summer Bank Holiday"
    assert "sla_calendar" not in await ticket_api.ticket(ticket["id"]), "not a field anyone reads"


async def test_an_unknown_or_missing_assignee_leaves_the_assignment_alone(ticket_api: TicketApi) -> None:
    _agent, ticket = await _create(ticket_api)
    ghost = {"id": str(UUID(int=7)), "name": "Ghost", "email": "ghost@helpdesk.test"}
    await ticket_api.consumer.consume(triaged(ticket, "P3", ghost))
    state = await ticket_api.ticket(ticket["id"])
    assert (state["priority"], state["assignee_id"]) == ("P3", None)
    await ticket_api.consumer.consume(triaged(ticket, "P3", None))
    assert len(await ticket_api.updates()) == 1


async def test_a_breach_raises_the_priority_one_level_but_not_past_p1(ticket_api: TicketApi) -> None:
    agent, ticket = await _create(ticket_api)
    await ticket_api.consumer.consume(triaged(ticket, "P2", agent))
    await ticket_api.consumer.consume(breached(ticket))
    assert (await ticket_api.ticket(ticket["id"]))["priority"] == "P1"
    await ticket_api.consumer.consume(breached(ticket, "resolution"))
    assert (await ticket_api.ticket(ticket["id"]))["priority"] == "P1"

    actions = [(e["action"], e["changes"].get("target")) for e in await ticket_api.audit(ticket["id"])]
    assert actions[-2:] == [("sla_breached", "first_response"), ("sla_breached", "resolution")]
    updates = await ticket_api.updates()
    assert [u["changed"] for u in updates[1:]] == [{"priority": ["P2", "P1"]}]


async def test_a_breach_triage_does_not_escalate_raises_nothing(ticket_api: TicketApi) -> None:
    agent, ticket = await _create(ticket_api)
    await ticket_api.consumer.consume(triaged(ticket, "P3", agent))
    await ticket_api.consumer.consume(breached(ticket, "resolution", escalated_priority=None))
    assert (await ticket_api.ticket(ticket["id"]))["priority"] == "P3"
    assert (await ticket_api.audit(ticket["id"]))[-1]["action"] == "sla_breached"


async def test_an_unknown_ticket_is_ignored(ticket_api: TicketApi) -> None:
    ghost = {"id": str(new_id()), "number": "TKT-999", "subject": "x"}
    assert await ticket_api.consumer.consume(triaged(ghost, "P2", None)) == "applied"
    assert await ticket_api.consumer.consume(breached(ghost)) == "applied"
    assert await ticket_api.updates() == []


async def test_a_call_the_customer_decision_opens_one_call_task_for_the_consultant(
    ticket_api: TicketApi,
) -> None:
    agent, ticket = await _create(ticket_api)
    await ticket_api.consumer.consume(triaged(ticket, "P1", agent, call_customer=True))
    await ticket_api.consumer.consume(triaged(ticket, "P1", agent, call_customer=True))  # re-triaged
    agent_headers = auth.bearer(auth.agent(UUID(agent["id"])))
    tasks = (await ticket_api.client.get("/api/v1/call-tasks", headers=agent_headers)).json()
    assert [(t["ticket_id"], t["agent_id"], t["status"]) for t in tasks] == [
        (ticket["id"], agent["id"], "open")
    ]
