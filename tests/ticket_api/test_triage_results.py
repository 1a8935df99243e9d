"""Escalation is triage's decision: ticket_api applies the priority an ``sla.breached`` sends
(``services/ticket_api/tickets/triage_results.py``), and never lowers one raised meanwhile."""

from __future__ import annotations

from typing import Any

from tests.triage.test_ticket_api_results import ADMIN, TicketApi, breached, ticket_api, triaged

__all__ = ["ticket_api"]  # the fixture, shared with triage's tests of the same consumer


async def agent_and_ticket(api: TicketApi) -> tuple[dict[str, Any], dict[str, Any]]:
    agent = await api.client.post(
        "/api/v1/agents", json={"email": "alice@helpdesk.test", "name": "Alice"}, headers=ADMIN
    )
    assert agent.status_code == 201, agent.text
    ticket = await api.client.post(
        "/api/v1/tickets",
        json={
            "contact": {"email": "jane@acme.test"},
            "subject": "Printer offline",
            "description": "It stopped.",
            "urgency": "high",
        },
        headers=ADMIN,
    )
    assert ticket.status_code == 201, ticket.text
    return agent.json(), ticket.json()


async def test_a_breach_applies_the_priority_triage_sends(ticket_api: TicketApi) -> None:
    agent, ticket = await agent_and_ticket(ticket_api)
    await ticket_api.consumer.consume(triaged(ticket, "P4", agent))
    await ticket_api.consumer.consume(breached(ticket, escalated_priority="P2"))
    assert (await ticket_api.ticket(ticket["id"]))["priority"] == "P2", "as sent, not recomputed here"
    updates = await ticket_api.updates()
    assert updates[-1]["changed"] == {"priority": ["P4", "P2"]}


async def test_a_breach_never_lowers_a_priority_an_agent_raised(ticket_api: TicketApi) -> None:
    agent, ticket = await agent_and_ticket(ticket_api)
    await ticket_api.consumer.consume(triaged(ticket, "P3", agent))
    raised = await ticket_api.client.patch(
        f"/api/v1/tickets/{ticket['id']}", json={"priority": "P1"}, headers=ADMIN
    )
    assert raised.status_code == 200, raised.text
    await ticket_api.consumer.consume(breached(ticket, escalated_priority="P2"))
    assert (await ticket_api.ticket(ticket["id"]))["priority"] == "P1"
    assert (await ticket_api.audit(ticket["id"]))[-1]["action"] == "sla_breached"
