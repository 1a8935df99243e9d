from __future__ import annotations

import json

from sqlalchemy import select

from services.ticket_api.db import outbox
from tests.ticket_api.conftest import Actors, new_ticket


async def time_entry_events(api: Actors) -> list[tuple[str, dict[str, object]]]:
    async with api.runtime.sessions() as session:
        rows = await session.execute(
            select(outbox.c.type, outbox.c.event)
            .where(outbox.c.type.like("time_entry.%"))
            .order_by(outbox.c.created_at)
        )
        return [(row.type, json.loads(row.event)["data"]) for row in rows]


async def test_agents_log_correct_and_delete_time_each_change_an_event(api: Actors) -> None:
    ticket = (await api.client.post("/api/v1/tickets", json=new_ticket(), headers=api.portal_a)).json()
    path = f"/api/v1/tickets/{ticket['id']}/time-entries"

    logged = await api.client.post(
        path,
        json={"minutes": 45, "started_at": "2026-11-24T15:00:00Z", "description": "Card swap"},
        headers=api.agent,
    )
    assert logged.status_code == 201, logged.text
    entry = logged.json()
    assert entry["agent_id"] == str(api.agent_id)
    assert entry["revision"] == 1

    corrected = await api.client.patch(
        f"/api/v1/time-entries/{entry['id']}", json={"minutes": 60}, headers=api.agent
    )
    assert corrected.json()["minutes"] == 60
    assert corrected.json()["revision"] == 2
    listed = await api.client.get(path, headers=api.portal_a)
    assert [e["minutes"] for e in listed.json()["items"]] == [60]

    deleted = await api.client.delete(f"/api/v1/time-entries/{entry['id']}", headers=api.agent)
    assert deleted.status_code == 204
    assert (await api.client.get(path, headers=api.agent)).json()["items"] == []
    gone = await api.client.patch(
        f"/api/v1/time-entries/{entry['id']}", json={"minutes": 5}, headers=api.agent
    )
    assert gone.status_code == 404

    events = await time_entry_events(api)
    assert [(kind, data["revision"], data["minutes"], data["deleted"]) for kind, data in events] == [
        ("time_entry.logged", 1, 45, False),
        ("time_entry.updated", 2, 60, False),
        ("time_entry.deleted", 3, 60, True),
    ]
    assert events[0][1]["ticket_number"] == ticket["number"]
    assert events[0][1]["organization_id"] == api.org_a["id"]


async def test_time_input_is_validated_and_only_agents_log_it(api: Actors) -> None:
    ticket = (await api.client.post("/api/v1/tickets", json=new_ticket(), headers=api.portal_a)).json()
    path = f"/api/v1/tickets/{ticket['id']}/time-entries"
    for bad in ({"minutes": 0}, {"minutes": 2000}, {"minutes": 5, "started_at": "2026-11-24T15:00:00"}, {}):
        assert (await api.client.post(path, json=bad, headers=api.agent)).status_code == 422, bad
    assert (await api.client.post(path, json={"minutes": 5}, headers=api.portal_a)).status_code == 403
    # The admin client of the tests is no agent: it must say who did the work.
    no_agent = await api.client.post(path, json={"minutes": 5}, headers=api.admin)
    assert no_agent.status_code == 422
    assert "agent_id" in no_agent.json()["detail"]
    on_behalf = await api.client.post(
        path, json={"minutes": 5, "agent_id": str(api.agent_id)}, headers=api.admin
    )
    assert on_behalf.status_code == 201
