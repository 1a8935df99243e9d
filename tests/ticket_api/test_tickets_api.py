from __future__ import annotations

import asyncio
from uuid import UUID

from services.ticket_api.tickets.schemas import TicketPublic
from shared.pagination import Page
from tests.ticket_api.conftest import Actors, new_ticket

PROBLEM = "application/problem+json"


async def test_portal_opens_a_ticket_for_a_new_contact_of_its_organization(api: Actors) -> None:
    response = await api.client.post("/api/v1/tickets", json=new_ticket(), headers=api.portal_a)

    assert response.status_code == 201, response.text
    ticket = response.json()
    assert ticket["number"].startswith("TKT-")
    assert ticket["status"] == "new"
    assert ticket["organization_id"] == api.org_a["id"]
    assert ticket["links"]["self"] == f"/api/v1/tickets/{ticket['id']}"
    assert response.headers["location"] == ticket["links"]["self"]
    contact = await api.client.get(f"/api/v1/contacts/{ticket['contact_id']}", headers=api.admin)
    assert contact.json()["email"] == "jane@acme.test"
    assert contact.json()["organization_id"] == api.org_a["id"]
    # The organization's first ticket: its contact becomes the primary contact, announced after.
    assert (await api.outbox_types())[-2:] == ["ticket.created", "organization.updated"]


async def test_ticket_numbers_are_sequential_and_unique(api: Actors) -> None:
    responses = await asyncio.gather(
        *(
            api.client.post("/api/v1/tickets", json=new_ticket(subject=f"s{i}"), headers=api.admin)
            for i in range(8)
        )
    )
    assert [r.status_code for r in responses] == [201] * 8
    numbers = sorted(int(r.json()["number"].removeprefix("TKT-")) for r in responses)
    assert numbers == list(range(numbers[0], numbers[0] + 8))


async def test_lookup_by_number(api: Actors) -> None:
    ticket = (await api.client.post("/api/v1/tickets", json=new_ticket(), headers=api.admin)).json()

    for form in (ticket["number"], ticket["number"].removeprefix("TKT-"), ticket["number"].lower()):
        found = await api.client.get(f"/api/v1/tickets/by-number/{form}", headers=api.portal_a)
        assert found.status_code == 200
        assert found.json()["id"] == ticket["id"]
    other_org = await api.client.get(f"/api/v1/tickets/by-number/{ticket['number']}", headers=api.portal_b)
    assert other_org.status_code == 404
    nonsense = await api.client.get("/api/v1/tickets/by-number/XYZ-1", headers=api.admin)
    assert nonsense.status_code == 404
    assert nonsense.headers["content-type"] == PROBLEM


async def test_same_idempotency_key_and_body_returns_the_same_ticket(api: Actors) -> None:
    headers = {**api.portal_a, "Idempotency-Key": "order-42"}
    first = await api.client.post("/api/v1/tickets", json=new_ticket(), headers=headers)
    second = await api.client.post("/api/v1/tickets", json=new_ticket(), headers=headers)

    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert second.headers["location"] == first.headers["location"] == f"/api/v1/tickets/{first.json()['id']}"
    listing = await api.client.get("/api/v1/tickets", headers=api.admin)
    assert len(listing.json()["items"]) == 1


async def test_same_idempotency_key_with_another_body_is_refused_without_effect(api: Actors) -> None:
    headers = {**api.portal_a, "Idempotency-Key": "order-43"}
    await api.client.post("/api/v1/tickets", json=new_ticket(), headers=headers)
    reused = await api.client.post("/api/v1/tickets", json=new_ticket(subject="Other"), headers=headers)

    assert reused.status_code == 422
    assert reused.headers["content-type"] == PROBLEM
    assert reused.json()["type"].endswith("idempotency-key-reused")
    listing = await api.client.get("/api/v1/tickets", headers=api.admin)
    assert [t["subject"] for t in listing.json()["items"]] == ["Printer offline"]


async def test_concurrent_requests_with_one_key_create_one_ticket(api: Actors) -> None:
    headers = {**api.portal_a, "Idempotency-Key": "burst"}
    responses = await asyncio.gather(
        *(api.client.post("/api/v1/tickets", json=new_ticket(), headers=headers) for _ in range(6))
    )
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert {r.headers["location"] for r in responses} == {f"/api/v1/tickets/{responses[0].json()['id']}"}
    listing = await api.client.get("/api/v1/tickets", headers=api.admin)
    assert len(listing.json()["items"]) == 1


async def test_idempotency_keys_are_scoped_by_caller(api: Actors) -> None:
    body_b = new_ticket(contact={"email": "bob@globex.test"})
    first = await api.client.post(
        "/api/v1/tickets", json=new_ticket(), headers={**api.portal_a, "Idempotency-Key": "k"}
    )
    other = await api.client.post(
        "/api/v1/tickets", json=body_b, headers={**api.portal_b, "Idempotency-Key": "k"}
    )

    assert other.status_code == 201
    assert other.json()["id"] != first.json()["id"]
    assert other.json()["organization_id"] == api.org_b["id"]


async def test_bad_input_is_a_problem_naming_each_field(api: Actors) -> None:
    body = new_ticket(urgency="whenever", surprise=True)
    body["contact"] = {"email": "not-an-address"}
    response = await api.client.post("/api/v1/tickets", json=body, headers=api.admin)

    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["status"] == 422
    locations = {error["location"] for error in problem["errors"]}
    assert {"body.urgency", "body.surprise", "body.contact.email"} <= locations
    assert "ticket.created" not in await api.outbox_types()


async def test_malformed_json_and_unknown_ids_are_problems(api: Actors) -> None:
    broken = await api.client.post(
        "/api/v1/tickets", content=b'{"subject": ', headers={**api.admin, "content-type": "application/json"}
    )
    assert broken.status_code == 422
    assert broken.headers["content-type"] == PROBLEM
    missing = await api.client.get("/api/v1/tickets/01900000-0000-7000-8000-000000000000", headers=api.admin)
    assert missing.status_code == 404
    assert missing.json()["type"].endswith("ticket-not-found")
    not_uuid = await api.client.get("/api/v1/tickets/123", headers=api.admin)
    assert not_uuid.status_code == 422


async def test_unauthenticated_and_unknown_tokens_are_refused(api: Actors) -> None:
    anonymous = await api.client.get("/api/v1/tickets")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    forged = await api.client.get("/api/v1/tickets", headers={"Authorization": "Bearer hd_admin_forged"})
    assert forged.status_code == 401


async def test_portal_never_sees_another_organizations_tickets(api: Actors) -> None:
    mine = (await api.client.post("/api/v1/tickets", json=new_ticket(), headers=api.portal_a)).json()
    theirs = (
        await api.client.post(
            "/api/v1/tickets", json=new_ticket(contact={"email": "bob@globex.test"}), headers=api.portal_b
        )
    ).json()

    listing = await api.client.get("/api/v1/tickets", headers=api.portal_a)
    assert [t["id"] for t in listing.json()["items"]] == [mine["id"]]
    filtered = await api.client.get(
        "/api/v1/tickets", params={"organization_id": api.org_b["id"]}, headers=api.portal_a
    )
    assert filtered.json()["items"] == []
    for method, path in (
        ("GET", f"/api/v1/tickets/{theirs['id']}"),
        ("GET", f"/api/v1/tickets/{theirs['id']}/messages"),
        ("PATCH", f"/api/v1/tickets/{theirs['id']}"),
        ("POST", f"/api/v1/tickets/{theirs['id']}/messages"),
        ("POST", f"/api/v1/tickets/{theirs['id']}/status"),
        ("GET", f"/api/v1/organizations/{api.org_b['id']}"),
        ("GET", f"/api/v1/contacts/{theirs['contact_id']}"),
    ):
        body = (
            {"subject": "x"}
            if method == "PATCH"
            else {"body": "x"}
            if "messages" in path
            else {"status": "closed"}
        )
        response = await api.client.request(
            method, path, headers=api.portal_a, json=body if method != "GET" else None
        )
        assert response.status_code == 404, (method, path, response.text)


async def test_portal_cannot_open_tickets_for_another_organizations_contact(api: Actors) -> None:
    response = await api.client.post(
        "/api/v1/tickets", json=new_ticket(contact={"email": "bob@globex.test"}), headers=api.portal_a
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM


async def test_list_filters_and_cursor_pagination(api: Actors) -> None:
    created = []
    for i in range(5):
        response = await api.client.post(
            "/api/v1/tickets", json=new_ticket(subject=f"t{i}"), headers=api.admin
        )
        created.append(response.json())
    await api.client.patch(
        f"/api/v1/tickets/{created[1]['id']}",
        json={"priority": "P1", "assignee_id": str(api.agent_id)},
        headers=api.agent,
    )
    await api.client.post(
        f"/api/v1/tickets/{created[2]['id']}/status", json={"status": "open"}, headers=api.agent
    )

    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await api.client.get("/api/v1/tickets", params=params, headers=api.admin)).json()
        seen += [t["id"] for t in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [t["id"] for t in reversed(created)]

    async def ids(**params: object) -> list[str]:
        response = await api.client.get("/api/v1/tickets", params=params, headers=api.admin)
        assert response.status_code == 200, response.text
        return [t["id"] for t in response.json()["items"]]

    assert await ids(priority="P1") == [created[1]["id"]]
    assert await ids(assignee_id=str(api.agent_id)) == [created[1]["id"]]
    assert await ids(status="open") == [created[2]["id"]]
    assert set(await ids(status=["open", "new"])) == {t["id"] for t in created}
    assert len(await ids(unassigned=True)) == 4
    assert await ids(organization_id=api.org_b["id"]) == []
    assert await ids(updated_since="2999-01-01T00:00:00Z") == []
    bad = await api.client.get("/api/v1/tickets", params={"cursor": "%%%"}, headers=api.admin)
    assert bad.status_code == 400
    too_many = await api.client.get("/api/v1/tickets", params={"limit": 100000}, headers=api.admin)
    assert too_many.status_code == 422


async def test_status_lifecycle_and_invalid_transitions(api: Actors) -> None:
    ticket = (await api.client.post("/api/v1/tickets", json=new_ticket(), headers=api.portal_a)).json()
    path = f"/api/v1/tickets/{ticket['id']}/status"
    messages = f"/api/v1/tickets/{ticket['id']}/messages"

    # Nobody asked the customer anything yet: waiting on them (pausing the SLA) is refused.
    unasked = await api.client.post(path, json={"status": "pending_customer"}, headers=api.agent)
    assert unasked.status_code == 409, unasked.text
    assert "question to them first" in unasked.json()["detail"]
    await api.client.post(
        messages, json={"body": "Kept to ourselves", "visibility": "internal"}, headers=api.agent
    )
    assert (
        await api.client.post(path, json={"status": "pending_customer"}, headers=api.agent)
    ).status_code == 409
    asked = await api.client.post(messages, json={"body": "Which model is it?"}, headers=api.agent)
    assert asked.status_code == 201, asked.text

    for status in ("pending_customer", "open", "closed"):
        response = await api.client.post(path, json={"status": status}, headers=api.agent)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == status
    assert response.json()["closed_at"] is not None

    invalid = await api.client.post(path, json={"status": "pending_customer"}, headers=api.agent)
    assert invalid.status_code == 409
    assert invalid.json()["allowed"] == ["open"]

    reopened = await api.client.post(path, json={"status": "open"}, headers=api.agent)
    assert reopened.json()["status"] == "open"
    assert reopened.json()["closed_at"] is None
    types = await api.outbox_types()
    assert types.count("ticket.status_changed") == 5  # the reply opened it: new → open
    assert types.count("ticket.closed") == 1


async def test_portal_may_close_but_not_set_other_statuses_or_staff_fields(api: Actors) -> None:
    ticket = (await api.client.post("/api/v1/tickets", json=new_ticket(), headers=api.portal_a)).json()

    forbidden = await api.client.patch(
        f"/api/v1/tickets/{ticket['id']}", json={"priority": "P1", "subject": "x"}, headers=api.portal_a
    )
    assert forbidden.status_code == 403
    assert forbidden.json()["fields"] == ["priority"]
    reopen = await api.client.post(
        f"/api/v1/tickets/{ticket['id']}/status", json={"status": "open"}, headers=api.portal_a
    )
    assert reopen.status_code == 403
    subject = await api.client.patch(
        f"/api/v1/tickets/{ticket['id']}", json={"subject": "Printer still offline"}, headers=api.portal_a
    )
    assert subject.status_code == 200
    assert subject.json()["subject"] == "Printer still offline"
    close = await api.client.post(
        f"/api/v1/tickets/{ticket['id']}/status", json={"status": "closed"}, headers=api.portal_a
    )
    assert close.json()["status"] == "closed"


async def test_messages_internal_notes_stay_internal(api: Actors) -> None:
    ticket = (await api.client.post("/api/v1/tickets", json=new_ticket(), headers=api.portal_a)).json()
    messages = f"/api/v1/tickets/{ticket['id']}/messages"

    reply = await api.client.post(messages, json={"body": "Restart it, please."}, headers=api.agent)
    assert reply.status_code == 201
    assert reply.json()["author_kind"] == "agent"
    assert reply.json()["author_id"] == str(api.agent_id)
    note = await api.client.post(
        messages, json={"body": "Known firmware bug", "visibility": "internal"}, headers=api.agent
    )
    assert note.status_code == 201
    portal_note = await api.client.post(
        messages, json={"body": "x", "visibility": "internal"}, headers=api.portal_a
    )
    assert portal_note.status_code == 403

    as_portal = (await api.client.get(messages, headers=api.portal_a)).json()["items"]
    as_agent = (await api.client.get(messages, headers=api.agent)).json()["items"]
    assert [m["body"] for m in as_portal] == ["Restart it, please."]
    assert [m["body"] for m in as_agent] == ["Restart it, please.", "Known firmware bug"]
    # The first public agent reply opens a new ticket.
    current = (await api.client.get(f"/api/v1/tickets/{ticket['id']}", headers=api.agent)).json()
    assert current["status"] == "open"


async def test_customer_reply_resumes_a_ticket_waiting_on_the_customer(api: Actors) -> None:
    ticket = (await api.client.post("/api/v1/tickets", json=new_ticket(), headers=api.portal_a)).json()
    messages = f"/api/v1/tickets/{ticket['id']}/messages"
    await api.client.post(messages, json={"body": "Did you restart it?"}, headers=api.agent)
    waiting = await api.client.post(
        f"/api/v1/tickets/{ticket['id']}/status", json={"status": "pending_customer"}, headers=api.agent
    )
    assert waiting.status_code == 200, waiting.text

    await api.client.post(messages, json={"body": "Done, still broken"}, headers=api.portal_a)

    current = (await api.client.get(f"/api/v1/tickets/{ticket['id']}", headers=api.portal_a)).json()
    assert current["status"] == "open"


async def test_every_change_is_in_the_audit_trail(api: Actors) -> None:
    ticket = (await api.client.post("/api/v1/tickets", json=new_ticket(), headers=api.portal_a)).json()
    await api.client.patch(f"/api/v1/tickets/{ticket['id']}", json={"priority": "P2"}, headers=api.agent)
    await api.client.post(
        f"/api/v1/tickets/{ticket['id']}/status",
        json={"status": "closed", "reason": "fixed"},
        headers=api.agent,
    )

    trail = await api.client.get(f"/api/v1/tickets/{ticket['id']}/audit", headers=api.agent)
    assert [(e["action"], e["actor"].split(":")[0]) for e in trail.json()] == [
        ("created", "portal"),
        ("updated", "agent"),
        ("status_changed", "agent"),
    ]
    assert trail.json()[1]["changes"] == {"priority": [None, "P2"]}
    assert trail.json()[2]["changes"] == {"status": ["new", "closed"], "reason": "fixed"}
    assert all(e["request_id"] for e in trail.json())
    assert (
        await api.client.get(f"/api/v1/tickets/{ticket['id']}/audit", headers=api.portal_a)
    ).status_code == 403


async def test_assigning_an_unknown_agent_is_refused(api: Actors) -> None:
    ticket = (await api.client.post("/api/v1/tickets", json=new_ticket(), headers=api.admin)).json()
    response = await api.client.patch(
        f"/api/v1/tickets/{ticket['id']}", json={"assignee_id": str(UUID(int=1))}, headers=api.agent
    )
    assert response.status_code == 404
    assert response.json()["type"].endswith("agent-not-found")


async def test_lists_and_new_tickets_are_written_exactly_as_the_public_model_writes_them(api: Actors) -> None:
    """A page is serialized straight from rows (orjson), a new ticket too: byte for byte what
    TicketPublic would write (UTC as Z, enums as values, nulls kept, field order)."""
    created = await api.client.post(
        "/api/v1/tickets", json=new_ticket(subject="Bytes", impact="team"), headers=api.admin
    )
    assert created.status_code == 201, created.text
    assert created.content == TicketPublic.model_validate(created.json()).model_dump_json().encode()
    await api.client.post("/api/v1/tickets", json=new_ticket(), headers=api.admin)
    page = await api.client.get("/api/v1/tickets", params={"limit": 1}, headers=api.admin)
    assert page.status_code == 200, page.text
    document = page.json()
    assert document["next_cursor"] is not None
    expected = Page[TicketPublic].model_validate(document).model_dump_json().encode()
    assert page.content == expected
    assert page.headers["content-type"] == "application/json"


async def test_counts_match_the_list_for_each_caller(api: Actors) -> None:
    """The queue's tabs in one request: by status, unassigned and the agent's own, over the
    tickets the caller may see (with the list's filters)."""
    acme = [
        (
            await api.client.post("/api/v1/tickets", json=new_ticket(subject=f"A{i}"), headers=api.portal_a)
        ).json()
        for i in range(3)
    ]
    globex = (
        await api.client.post(
            "/api/v1/tickets", json=new_ticket(contact={"email": "g@globex.test"}), headers=api.portal_b
        )
    ).json()
    mine = await api.client.patch(
        f"/api/v1/tickets/{acme[0]['id']}", json={"assignee_id": str(api.agent_id)}, headers=api.admin
    )
    assert mine.status_code == 200, mine.text
    await api.client.post(
        f"/api/v1/tickets/{acme[1]['id']}/status", json={"status": "closed"}, headers=api.agent
    )

    staff = (await api.client.get("/api/v1/tickets/counts", headers=api.agent)).json()
    assert staff == {
        "total": 4,
        "by_status": {"new": 3, "open": 0, "pending_customer": 0, "closed": 1},
        "unassigned": 3,
        "mine": 1,
    }
    listed = (await api.client.get("/api/v1/tickets", params={"limit": 200}, headers=api.agent)).json()
    assert len(listed["items"]) == staff["total"]

    portal = (await api.client.get("/api/v1/tickets/counts", headers=api.portal_a)).json()
    assert (portal["total"], portal["mine"]) == (3, None), "a portal counts its organization's only"
    filtered = await api.client.get(
        "/api/v1/tickets/counts", params={"organization_id": globex["organization_id"]}, headers=api.portal_a
    )
    assert filtered.json()["total"] == 0, "another organization's tickets are not counted, even asked for"
    by_priority = await api.client.get("/api/v1/tickets/counts", params={"priority": "P9"}, headers=api.agent)
    assert by_priority.status_code == 422
    assert (await api.client.get("/api/v1/tickets/counts")).status_code == 401
