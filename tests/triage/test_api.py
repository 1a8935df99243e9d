"""triage's API: configuration (validated; a bad one changes nothing), decisions, SLA status,
triage on demand, and who may do what."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import httpx
import pytest

from services.triage.app import create_app
from services.triage.settings import Settings
from shared.ids import new_id
from tests import auth
from tests.triage.conftest import Ticket, Triage, agent_event, chicago, organization_event, organization_ref

ADMIN = auth.bearer(auth.admin())
AGENT = auth.bearer(auth.agent())
ALICE, BOB = UUID(int=1), UUID(int=2)
BASE = "/api/v1/triage"


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return dict(response.json())


async def test_reading_is_for_staff_and_changing_for_admins(client: httpx.AsyncClient) -> None:
    problem(await client.get(f"{BASE}/matrix"), 401)
    portal = auth.bearer(auth.portal(new_id()))
    for path in ("/matrix", "/policies", "/calendars", f"/tickets/{new_id()}/sla"):
        assert problem(await client.get(BASE + path, headers=portal), 403)["type"].endswith("staff-only")
    assert (await client.get(f"{BASE}/matrix", headers=AGENT)).status_code == 200
    matrix = (await client.get(f"{BASE}/matrix", headers=AGENT)).json()
    problem(await client.put(f"{BASE}/matrix", json=matrix, headers=AGENT), 403)
    assert (await client.put(f"{BASE}/matrix", json=matrix, headers=ADMIN)).status_code == 200


async def test_a_bad_matrix_is_refused_and_the_old_one_stays(client: httpx.AsyncClient) -> None:
    matrix = (await client.get(f"{BASE}/matrix", headers=ADMIN)).json()
    assert matrix["cells"]["high"]["person"] == "P2"
    broken = {**matrix, "cells": {**matrix["cells"], "high": {"person": "P0"}}}
    body = problem(await client.put(f"{BASE}/matrix", json=broken, headers=ADMIN), 422)
    assert "high x person: 'P0' is not one of" in body["detail"]
    assert (await client.get(f"{BASE}/matrix", headers=ADMIN)).json() == matrix

    changed = {**matrix, "tier_adjustments": {"agreement": 2}}
    assert (await client.put(f"{BASE}/matrix", json=changed, headers=ADMIN)).json()["tier_adjustments"] == {
        "agreement": 2
    }


async def test_policies_refuse_negative_targets(client: httpx.AsyncClient) -> None:
    policies = (await client.get(f"{BASE}/policies", headers=ADMIN)).json()
    assert policies["default"]["P2"]["first_response_minutes"] == 240
    bad = {
        "default": {**policies["default"], "P3": {"first_response_minutes": -10, "resolution_minutes": 100}}
    }
    body = problem(await client.put(f"{BASE}/policies", json=bad, headers=ADMIN), 422)
    assert (
        body["detail"]
        == "SLA policies: default.P3.first_response_minutes: -10 is not a positive number of minutes."
    )
    assert (await client.get(f"{BASE}/policies", headers=ADMIN)).json() == policies
    tighter = {
        **policies,
        "tiers": {"agreement": {"P1": {"first_response_minutes": 30, "resolution_minutes": 240}}},
    }
    assert (await client.put(f"{BASE}/policies", json=tighter, headers=ADMIN)).json() == tighter


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"weekly_hours": {}}, "needs working hours on at least one weekday"),
        ({"weekly_hours": {"mon": [["09:00", "13:00"], ["12:00", "17:00"]]}}, "overlap"),
        ({"weekly_hours": {"mon": [["17:00", "09:00"]]}}, "does not end after it starts"),
        ({"timezone": "America/Gotham"}, "unknown IANA timezone 'America/Gotham'"),
        ({"holiday_country": "XX"}, "no public holidays known for country 'XX'"),
    ],
)
async def test_unworkable_calendars_are_refused(
    client: httpx.AsyncClient, change: dict[str, Any], message: str
) -> None:
    before = (await client.get(f"{BASE}/calendars/default", headers=ADMIN)).json()
    body = {"weekly_hours": {"mon": [["09:00", "17:00"]]}, **change}
    assert (
        message
        in problem(await client.put(f"{BASE}/calendars/default", json=body, headers=ADMIN), 422)["detail"]
    )
    assert (await client.get(f"{BASE}/calendars/default", headers=ADMIN)).json() == before


async def test_calendars_are_stored_listed_and_assigned_to_organizations(
    client: httpx.AsyncClient, triage: Triage
) -> None:
    default = (await client.get(f"{BASE}/calendars/default", headers=AGENT)).json()
    assert (default["timezone"], default["holiday_country"], default["weekly_hours"]["fri"]) == (
        "America/Chicago",
        "US",
        [["09:00", "17:00"]],
    )
    emea = {
        "timezone": "Europe/Berlin",
        "weekly_hours": {"mon": [["08:00", "12:00"], ["12:00", "16:00"]]},
        "holiday_country": "DE",
        "closed_dates": ["2026-12-24"],
    }
    saved = (await client.put(f"{BASE}/calendars/emea", json=emea, headers=ADMIN)).json()
    assert saved["weekly_hours"] == {"mon": [["08:00", "16:00"]]}
    assert saved["updated_by"].startswith("admin:")
    assert [c["name"] for c in (await client.get(f"{BASE}/calendars", headers=AGENT)).json()] == [
        "default",
        "emea",
    ]
    problem(await client.get(f"{BASE}/calendars/nope", headers=AGENT), 404)
    problem(await client.get(f"{BASE}/calendars/bad%20name", headers=AGENT), 422)

    organization_id = new_id()
    path = f"{BASE}/organizations/{organization_id}/calendar"
    problem(await client.put(path, json={"calendar": "emea"}, headers=ADMIN), 404)
    await triage.consume(organization_event(organization_id))
    problem(await client.put(path, json={"calendar": "nope"}, headers=ADMIN), 422)
    assert (await client.put(path, json={"calendar": "emea"}, headers=ADMIN)).json()["calendar"] == "emea"

    # A ticket of that organization counts in Berlin's Monday hours.
    ticket = Ticket(organization=organization_ref(organization_id), created_at=chicago(2026, 11, 24, 10, 0))
    await triage.consume(ticket.created())
    sla = (await client.get(f"{BASE}/tickets/{ticket.ticket_id}/sla", headers=AGENT)).json()
    first_response = next(t for t in sla["timers"] if t["target"] == "first_response")
    assert first_response["calendar"] == "emea"
    assert first_response["due_at"] == "2026-11-30T11:00:00Z"  # Monday 12:00 Berlin


async def test_decisions_sla_status_and_triage_on_demand(client: httpx.AsyncClient, triage: Triage) -> None:
    await triage.consume(agent_event(ALICE, "Alice"), agent_event(BOB, "Bob"))
    ticket = Ticket()
    await triage.consume(ticket.created())  # Alice
    other = Ticket(number="TKT-2")
    await triage.consume(other.created())  # Bob, then an agent hands it to Alice:
    await triage.consume(other.updated(chicago(2026, 11, 24, 10, 30), priority="P2", assignee_id=ALICE))
    problem(await client.get(f"{BASE}/tickets/{new_id()}/decisions", headers=AGENT), 404)

    page = (await client.get(f"{BASE}/tickets/{ticket.ticket_id}/decisions", headers=AGENT)).json()
    (decision,) = page["items"]
    assert (decision["priority"], decision["assignee_id"], decision["trigger"]) == (
        "P2",
        str(ALICE),
        "created",
    )
    assert decision["breakdown"]["sla"]["first_response_due_at"] == "2026-11-24T20:00:00+00:00"

    triage.clock.now = chicago(2026, 11, 24, 11, 0)
    sla = (await client.get(f"{BASE}/tickets/{ticket.ticket_id}/sla", headers=AGENT)).json()
    first_response = next(t for t in sla["timers"] if t["target"] == "first_response")
    assert (first_response["state"], first_response["elapsed_business_minutes"]) == ("running", 60)
    assert (first_response["remaining_business_minutes"], first_response["breached"]) == (180, False)

    # Tighter policies, then triage again on demand, moving the ticket to Bob.
    policies = (await client.get(f"{BASE}/policies", headers=ADMIN)).json()
    policies["default"]["P2"]["first_response_minutes"] = 120
    await client.put(f"{BASE}/policies", json=policies, headers=ADMIN)
    response = await client.post(
        f"{BASE}/tickets/{ticket.ticket_id}/triage", json={"reassign": True}, headers=AGENT
    )
    assert response.status_code == 200, response.text
    again = response.json()
    assert (again["trigger"], again["first_response_due_at"]) == ("on_demand", "2026-11-24T18:00:00Z")
    assert again["actor"].startswith("agent:")
    # This ticket's own load left out, Alice still carries the other P2: Bob is chosen.
    assert again["assignee_id"] == str(BOB)
    assert (
        len((await client.get(f"{BASE}/tickets/{ticket.ticket_id}/decisions", headers=AGENT)).json()["items"])
        == 2
    )
    problem(
        await client.post(f"{BASE}/tickets/{ticket.ticket_id}/triage", json={"surprise": 1}, headers=AGENT),
        422,
    )


def test_the_openapi_documents_examples_problems_and_tokens() -> None:
    spec = create_app(Settings(env="test")).openapi()
    schemas = spec["components"]["schemas"]
    operations = [(path, method, op) for path, item in spec["paths"].items() for method, op in item.items()]
    assert {path for path, _, _ in operations if path.startswith(BASE)} == {
        f"{BASE}/matrix",
        f"{BASE}/policies",
        f"{BASE}/calendars",
        f"{BASE}/calendars/{{name}}",
        f"{BASE}/organizations/{{organization_id}}/calendar",
        f"{BASE}/tickets/{{ticket_id}}/decisions",
        f"{BASE}/tickets/{{ticket_id}}/sla",
        f"{BASE}/tickets/{{ticket_id}}/triage",
        f"{BASE}/sla/preview",
    }
    for path, method, op in operations:
        if not path.startswith(BASE):
            continue
        assert "401" in op["responses"] and op.get("security") == [{"HTTPBearer": []}], f"{method} {path}"
        if "requestBody" in op:
            ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
            assert schemas[ref].get("examples"), f"{method} {path}: {ref} has no example"
