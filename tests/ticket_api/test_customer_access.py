"""Customers: sign in by an emailed link (which says nothing about who exists), then reach
only their own tickets and their own contact record."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import select

from services.ticket_api.db import outbox
from shared import sign_in_links
from tests.ticket_api.conftest import Actors, new_ticket


async def sign_in_requests(api: Actors) -> list[dict[str, Any]]:
    async with api.runtime.sessions() as session:
        rows = await session.execute(
            select(outbox.c.event).where(outbox.c.type == "customer.sign_in_requested")
        )
        return [json.loads(row.event)["data"] for row in rows]


def secret(api: Actors) -> str:
    return api.runtime.settings.secret_key.get_secret_value()


async def customer_headers(api: Actors, email: str) -> dict[str, str]:
    """Sign in as the contact with ``email`` the way a customer does: request, then redeem."""
    requested = await api.client.post("/api/v1/auth/magic-link", json={"email": email})
    assert requested.status_code == 202
    request = (await sign_in_requests(api))[-1]
    token = sign_in_links.make_token(
        UUID(request["contact_id"]),
        request["nonce"],
        datetime.fromisoformat(request["expires_at"]),
        secret=secret(api),
    )
    redeemed = await api.client.post("/api/v1/auth/magic-link/redeem", json={"token": token})
    assert redeemed.status_code == 200, redeemed.text
    return {"Authorization": f"Bearer {redeemed.json()['access_token']}"}


async def test_asking_for_a_link_never_reveals_who_exists(api: Actors) -> None:
    ticket = (await api.client.post("/api/v1/tickets", json=new_ticket(), headers=api.portal_a)).json()
    answers = [
        await api.client.post("/api/v1/auth/magic-link", json=body)
        for body in (
            {"email": "jane@acme.test"},
            {"email": "nobody@acme.test"},
            {"email": "jane@acme.test", "ticket_number": "TKT-999999"},
            {"email": "jane@acme.test", "ticket_number": ticket["number"]},
        )
    ]
    assert {a.status_code for a in answers} == {202}
    assert len({a.text for a in answers}) == 1
    requests = await sign_in_requests(api)
    assert [r["email"] for r in requests] == ["jane@acme.test", "jane@acme.test"]
    assert requests[1]["ticket_number"] == ticket["number"]


async def test_a_link_signs_in_once_and_only_while_fresh(api: Actors) -> None:
    await api.client.post("/api/v1/tickets", json=new_ticket(), headers=api.portal_a)
    await api.client.post("/api/v1/auth/magic-link", json={"email": "jane@acme.test"})
    request = (await sign_in_requests(api))[0]
    contact_id = UUID(request["contact_id"])
    token = sign_in_links.make_token(
        contact_id, request["nonce"], datetime.fromisoformat(request["expires_at"]), secret=secret(api)
    )
    first = await api.client.post("/api/v1/auth/magic-link/redeem", json={"token": token})
    assert first.status_code == 200
    again = await api.client.post("/api/v1/auth/magic-link/redeem", json={"token": token})
    assert again.status_code == 400
    assert "already used" in again.json()["detail"]

    expired = sign_in_links.make_token(
        contact_id, "n2", datetime.now(UTC) - timedelta(seconds=1), secret=secret(api)
    )
    forged = sign_in_links.make_token(
        contact_id, "n3", datetime.now(UTC) + timedelta(minutes=5), secret="guess"
    )
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    for bad in (expired, forged, tampered):
        response = await api.client.post("/api/v1/auth/magic-link/redeem", json={"token": bad})
        assert response.status_code == 400, bad
        assert response.headers["content-type"] == "application/problem+json"


async def test_asking_too_often_is_refused(api: Actors) -> None:
    statuses = [
        (await api.client.post("/api/v1/auth/magic-link", json={"email": "someone@acme.test"})).status_code
        for _ in range(6)
    ]
    assert statuses == [202] * 5 + [429]


async def test_a_customer_reaches_only_their_own_tickets_and_record(api: Actors) -> None:
    jane = (await api.client.post("/api/v1/tickets", json=new_ticket(), headers=api.portal_a)).json()
    colleague = (
        await api.client.post(
            "/api/v1/tickets",
            json=new_ticket(contact={"email": "wile@acme.test"}, subject="Private matter"),
            headers=api.portal_a,
        )
    ).json()
    await api.client.post(
        f"/api/v1/tickets/{jane['id']}/messages",
        json={"body": "internal", "visibility": "internal"},
        headers=api.agent,
    )
    headers = await customer_headers(api, "jane@acme.test")

    listing = await api.client.get("/api/v1/tickets", headers=headers)
    assert [t["id"] for t in listing.json()["items"]] == [jane["id"]]
    assert (await api.client.get(f"/api/v1/tickets/{colleague['id']}", headers=headers)).status_code == 404
    assert (
        await api.client.get(f"/api/v1/contacts/{colleague['contact_id']}", headers=headers)
    ).status_code == 404
    contacts = await api.client.get("/api/v1/contacts", headers=headers)
    assert [c["id"] for c in contacts.json()["items"]] == [jane["contact_id"]]
    messages = await api.client.get(f"/api/v1/tickets/{jane['id']}/messages", headers=headers)
    assert messages.json()["items"] == []

    own = await api.client.post("/api/v1/tickets", json=new_ticket(subject="Another"), headers=headers)
    assert own.status_code == 201
    for_someone_else = await api.client.post(
        "/api/v1/tickets", json=new_ticket(contact={"email": "wile@acme.test"}), headers=headers
    )
    assert for_someone_else.status_code == 422
    staff_fields = await api.client.patch(
        f"/api/v1/tickets/{jane['id']}", json={"priority": "P1"}, headers=headers
    )
    assert staff_fields.status_code == 403
    note = await api.client.post(
        f"/api/v1/tickets/{jane['id']}/messages",
        json={"body": "x", "visibility": "internal"},
        headers=headers,
    )
    assert note.status_code == 403
    reply = await api.client.post(
        f"/api/v1/tickets/{jane['id']}/messages", json={"body": "Thanks"}, headers=headers
    )
    assert reply.json()["author_kind"] == "customer"
    assert reply.json()["author_id"] == jane["contact_id"]
