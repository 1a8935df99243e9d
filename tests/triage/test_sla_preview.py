"""The SLA preview (``POST /api/v1/triage/sla/preview``): what a ticket's due times would be,
without creating one. The property: for random instants, calendars, tiers and priorities, the
preview says exactly what a ticket created at that instant gets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.triage.business_hours import WEEKDAYS
from shared.ids import new_id
from tests import auth
from tests.triage.conftest import Ticket, Triage, chicago, organization_event, organization_ref

ADMIN = auth.bearer(auth.admin())
BASE = "/api/v1/triage"
PRIORITIES = ("P1", "P2", "P3", "P4")
# Urgency x impact giving each priority in the default matrix (hourly: no tier adjustment).
INPUTS_OF = {
    "P1": ("critical", "team"),
    "P2": ("high", "person"),
    "P3": ("medium", "person"),
    "P4": ("low", "person"),
}
ZONES = ("America/Chicago", "Europe/Berlin", "Asia/Kolkata", "Australia/Sydney", "UTC", "America/St_Johns")
REGIONS = ((None, None), ("US", None), ("US", "LA"), ("DE", None), ("GB", None), ("AU", "NSW"))


@st.composite
def calendars(draw: st.DrawFn) -> dict[str, Any]:
    hours: dict[str, list[list[str]]] = {}
    for day in WEEKDAYS:
        if draw(st.booleans()):
            opens = draw(st.integers(0, 22))
            closes = draw(st.integers(opens + 1, 24))
            hours[day] = [
                [
                    f"{opens:02d}:{draw(st.sampled_from(['00', '30'])) if closes > opens + 1 else '00'}",
                    f"{closes:02d}:00",
                ]
            ]
    if not hours:
        hours["wed"] = [["09:00", "17:00"]]
    country, subdivision = draw(st.sampled_from(REGIONS))
    closed = draw(st.lists(st.dates(datetime(2026, 1, 1).date(), datetime(2027, 12, 31).date()), max_size=5))
    return {
        "timezone": draw(st.sampled_from(ZONES)),
        "weekly_hours": hours,
        "holiday_country": country,
        "holiday_subdivision": subdivision,
        "closed_dates": [d.isoformat() for d in closed],
    }


instants = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
).map(lambda moment: moment.replace(microsecond=0))


async def ticket_arriving(
    triage: Triage,
    client: httpx.AsyncClient,
    calendar: dict[str, Any],
    tier: str,
    at: datetime,
    priority: str,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A fresh organization on ``calendar``; its preview at ``at``, and the SLA of a ticket
    of that priority created at ``at``."""
    organization_id, name = new_id(), f"cal-{new_id().hex[:12]}"
    saved = await client.put(f"{BASE}/calendars/{name}", json=calendar, headers=ADMIN)
    assert saved.status_code == 200, saved.text
    await triage.consume(organization_event(organization_id, tier))
    assigned = await client.put(
        f"{BASE}/organizations/{organization_id}/calendar", json={"calendar": name}, headers=ADMIN
    )
    assert assigned.status_code == 200, assigned.text
    preview = await client.post(
        f"{BASE}/sla/preview",
        json={"organization_id": str(organization_id), "priority": priority, "at": at.isoformat()},
        headers=ADMIN,
    )
    assert preview.status_code == 200, preview.text
    urgency, impact = INPUTS_OF[priority]
    ticket = Ticket(
        organization=organization_ref(organization_id, tier), created_at=at, urgency=urgency, impact=impact
    )
    triage.clock.now = at + timedelta(seconds=1)
    await triage.consume(ticket.created())
    status = await client.get(f"{BASE}/tickets/{ticket.ticket_id}/sla", headers=ADMIN)
    assert status.status_code == 200, status.text
    return preview.json(), status.json()


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(calendar=calendars(), at=instants, priority=st.sampled_from(PRIORITIES))
async def test_the_preview_agrees_with_a_ticket_created_at_the_same_instant(
    triage: Triage, client: httpx.AsyncClient, calendar: dict[str, Any], at: datetime, priority: str
) -> None:
    preview, status = await ticket_arriving(triage, client, calendar, "hourly", at, priority)
    timers = {t["target"]: t for t in status["timers"]}
    assert status["priority"] == priority
    assert preview["calendar"]["timezone"] == calendar["timezone"]
    assert preview["pauses_assumed"] == []
    for target in ("first_response", "resolution"):
        assert datetime.fromisoformat(preview[f"{target}_due_at"]) == datetime.fromisoformat(
            timers[target]["due_at"]
        ), (target, preview, timers[target])
    assert datetime.fromisoformat(preview["clock_started_at"]) == datetime.fromisoformat(
        timers["first_response"]["clock_started_at"]
    )


async def test_a_holiday_is_named_as_the_reason_the_clock_waits(client: httpx.AsyncClient) -> None:
    thanksgiving = chicago(2026, 11, 26, 10, 0)
    preview = await client.post(
        f"{BASE}/sla/preview", json={"priority": "P2", "at": thanksgiving.isoformat()}, headers=ADMIN
    )
    assert preview.status_code == 200, preview.text
    body = preview.json()
    assert body["closed_reason"] == "2026-11-26: Thanksgiving Day"
    assert datetime.fromisoformat(body["clock_started_at"]) == chicago(2026, 11, 27, 9, 0)
    assert datetime.fromisoformat(body["first_response_due_at"]) == chicago(2026, 11, 27, 13, 0)
    assert body["calendar"]["name"] == "default" and body["targets_source"] == "default"


async def test_who_may_preview(client: httpx.AsyncClient, triage: Triage) -> None:
    organization_id = new_id()
    await triage.consume(organization_event(organization_id, "agreement"))
    body = {"organization_id": str(organization_id), "priority": "P1", "at": "2026-11-24T16:00:00Z"}
    own = auth.bearer(auth.portal(organization_id, scopes=("tickets:read",)))
    answer = await client.post(f"{BASE}/sla/preview", json=body, headers=own)
    assert answer.status_code == 200, answer.text
    assert answer.json()["support_tier"] == "agreement"
    other = auth.bearer(auth.portal(new_id(), scopes=("tickets:read",)))
    assert (await client.post(f"{BASE}/sla/preview", json=body, headers=other)).status_code == 404
    customer = auth.bearer(auth.customer(str(organization_id)))
    assert (await client.post(f"{BASE}/sla/preview", json=body, headers=customer)).status_code == 403
    naive = await client.post(
        f"{BASE}/sla/preview", json={**body, "at": "2026-11-24T16:00:00"}, headers=ADMIN
    )
    assert naive.status_code == 422 and "at" in naive.text
