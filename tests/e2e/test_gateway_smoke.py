"""Smoke test of the running system on PostgreSQL: a ticket goes in through the gateway, comes
back by id and number, carries the gateway's request id into the audit trail, and its event
reaches the workers of every subscribing service."""

from __future__ import annotations

import pytest

from shared.events import ROUTES, EventType
from tests.e2e.cast import Cast
from tests.e2e.world import Scene

pytestmark = pytest.mark.stack


def test_a_ticket_through_the_gateway_reaches_every_subscriber(tuesday: Scene, cast: Cast) -> None:
    body = {
        "contact": {"email": "jane@demo-customer.test", "name": "Jane"},
        "subject": "Printer offline",
        "description": "It stopped this morning. Urgent!",
        "urgency": "high",
    }
    portal, admin = cast.api(tuesday, "portal"), cast.api(tuesday, "admin")
    assert portal.call("GET", "/healthz").status_code == 200

    headers = {"Idempotency-Key": "smoke-1", "X-Request-ID": "smoke-request-1"}
    created = portal.call("POST", "/api/v1/tickets", json=body, headers=headers)
    assert created.status_code == 201, created.text
    assert created.headers["x-request-id"] == "smoke-request-1"
    ticket = created.json()
    replay = portal.call("POST", "/api/v1/tickets", json=body, headers={"Idempotency-Key": "smoke-1"})
    assert replay.json()["id"] == ticket["id"]
    assert replay.headers["idempotent-replayed"] == "true"

    by_number = portal.get(f"/api/v1/tickets/by-number/{ticket['number']}")
    assert by_number["id"] == ticket["id"]
    trail = admin.get(f"/api/v1/tickets/{ticket['id']}/audit")
    # Triage may already have added its own entry (actor service:triage, its own request id).
    assert (trail[0]["action"], trail[0]["request_id"]) == ("created", "smoke-request-1")

    anonymous = portal.client.get("/api/v1/tickets", headers={"Authorization": ""})
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    assert anonymous.headers["x-request-id"]
    # Paths of the other services are routed to them, not to ticket_api.
    assert (
        admin.call("GET", "/api/v1/billing/nothing-yet").json()["instance"] == "/api/v1/billing/nothing-yet"
    )

    # The ticket.created event was published and each subscriber's worker ran its job.
    (event,) = tuesday.backstage.await_subject(
        "ticket_api", f"ticket:{ticket['id']}", types=["ticket.created"]
    )[:1]
    answers = tuesday.backstage.outcomes(event)
    assert set(answers) == {service.value for service in ROUTES[EventType.TICKET_CREATED]}
    assert set(answers.values()) == {"applied"}, answers
