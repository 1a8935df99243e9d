from __future__ import annotations

from tests.ticket_api.conftest import Actors


async def test_admin_adds_agents_and_staff_list_them_by_skill(api: Actors) -> None:
    created = await api.client.post(
        "/api/v1/agents",
        json={
            "email": "Bob@Helpdesk.test",
            "name": "Bob",
            "skills": ["networks", "printers"],
            "timezone": "Europe/Berlin",
            "working_hours": {"mon": [["08:00", "12:00"], ["13:00", "17:00"]]},
            "capacity": 5,
        },
        headers=api.admin,
    )
    assert created.status_code == 201, created.text
    assert created.json()["email"] == "bob@helpdesk.test"

    async def names(**params: object) -> list[str]:
        response = await api.client.get("/api/v1/agents", params=params, headers=api.agent)
        assert response.status_code == 200, response.text
        return sorted(a["name"] for a in response.json()["items"])

    assert await names(skill="printers") == ["Alice", "Bob"]
    assert await names(skill="networks") == ["Bob"]
    assert await names(skill="print") == []
    assert await names() == ["Alice", "Bob"]


async def test_agent_input_is_validated(api: Actors) -> None:
    for bad in (
        {"timezone": "Mars/Olympus"},
        {"working_hours": {"someday": [["09:00", "17:00"]]}},
        {"working_hours": {"mon": [["17:00", "09:00"]]}},
        {"working_hours": {"mon": [["9am", "5pm"]]}},
        {"capacity": -1},
    ):
        response = await api.client.post(
            "/api/v1/agents", json={"email": "c@helpdesk.test", "name": "C", **bad}, headers=api.admin
        )
        assert response.status_code == 422, bad
        assert response.headers["content-type"] == "application/problem+json"
    duplicate = await api.client.post(
        "/api/v1/agents", json={"email": "ALICE@helpdesk.test", "name": "A2"}, headers=api.admin
    )
    assert duplicate.status_code == 409


async def test_only_admins_manage_agents_and_portals_see_none(api: Actors) -> None:
    body = {"email": "d@helpdesk.test", "name": "D"}
    assert (await api.client.post("/api/v1/agents", json=body, headers=api.agent)).status_code == 403
    assert (await api.client.post("/api/v1/agents", json=body, headers=api.portal_a)).status_code == 403
    assert (await api.client.get("/api/v1/agents", headers=api.portal_a)).status_code == 403
    assert (await api.client.get(f"/api/v1/agents/{api.agent_id}", headers=api.portal_a)).status_code == 403
    update = await api.client.patch(f"/api/v1/agents/{api.agent_id}", json={"capacity": 3}, headers=api.admin)
    assert update.json()["capacity"] == 3
    assert "agent.updated" in await api.outbox_types()
