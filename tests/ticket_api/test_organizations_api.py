from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from services.ticket_api.db import outbox
from tests.ticket_api.conftest import Actors, new_ticket


async def test_contacts_join_the_organization_owning_their_email_domain(api: Actors) -> None:
    ticket = (
        await api.client.post(
            "/api/v1/tickets", json=new_ticket(contact={"email": "Wile@ACME.test"}), headers=api.admin
        )
    ).json()
    assert ticket["organization_id"] == api.org_a["id"]
    stranger = (
        await api.client.post(
            "/api/v1/tickets", json=new_ticket(contact={"email": "x@elsewhere.test"}), headers=api.admin
        )
    ).json()
    assert stranger["organization_id"] is None


async def test_an_email_domain_belongs_to_one_organization(api: Actors) -> None:
    response = await api.client.post(
        "/api/v1/organizations",
        json={"name": "Copycat", "support_tier": "block", "email_domains": ["acme.test"]},
        headers=api.admin,
    )
    assert response.status_code == 409
    assert "acme.test" in response.json()["detail"]
    listing = await api.client.get("/api/v1/organizations", headers=api.admin)
    assert sorted(o["name"] for o in listing.json()["items"]) == ["Acme", "Globex"]


async def test_marking_the_sla_signed_emits_its_event_once(api: Actors) -> None:
    path = f"/api/v1/organizations/{api.org_a['id']}"
    signed = await api.client.patch(path, json={"sla_signed": True}, headers=api.admin)
    assert signed.status_code == 200
    assert signed.json()["sla_signed"] is True
    assert signed.json()["sla_signed_at"] is not None
    again = await api.client.patch(path, json={"sla_signed": True}, headers=api.admin)
    assert again.json()["sla_signed_at"] == signed.json()["sla_signed_at"]
    assert (await api.outbox_types()).count("organization.sla_signed") == 1


async def test_organization_input_and_permissions(api: Actors) -> None:
    for bad in ({"support_tier": "gold"}, {"timezone": "Nowhere/Land"}, {"email_domains": ["not a domain"]}):
        response = await api.client.post(
            "/api/v1/organizations", json={"name": "X", "support_tier": "hourly", **bad}, headers=api.admin
        )
        assert response.status_code == 422, bad
    forbidden = await api.client.post(
        "/api/v1/organizations", json={"name": "X", "support_tier": "hourly"}, headers=api.agent
    )
    assert forbidden.status_code == 403
    own = await api.client.get("/api/v1/organizations", headers=api.portal_a)
    assert [o["id"] for o in own.json()["items"]] == [api.org_a["id"]]
    assert (
        await api.client.patch(
            f"/api/v1/organizations/{api.org_a['id']}", json={"name": "Y"}, headers=api.portal_a
        )
    ).status_code == 403


async def test_people_who_wrote_before_their_organization_existed_join_it(api: Actors) -> None:
    early = (
        await api.client.post(
            "/api/v1/tickets", json=new_ticket(contact={"email": "ann@newco.test"}), headers=api.admin
        )
    ).json()
    done = (
        await api.client.post(
            "/api/v1/tickets",
            json=new_ticket(contact={"email": "ann@newco.test"}, subject="old"),
            headers=api.admin,
        )
    ).json()
    await api.client.post(
        f"/api/v1/tickets/{done['id']}/status", json={"status": "closed"}, headers=api.agent
    )
    assert early["organization_id"] is None

    newco = (
        await api.client.post(
            "/api/v1/organizations",
            json={"name": "NewCo", "support_tier": "agreement", "email_domains": ["newco.test"]},
            headers=api.admin,
        )
    ).json()

    contact = (await api.client.get(f"/api/v1/contacts/{early['contact_id']}", headers=api.admin)).json()
    assert contact["organization_id"] == newco["id"]
    assert (await api.client.get(f"/api/v1/tickets/{early['id']}", headers=api.admin)).json()[
        "organization_id"
    ] == newco["id"]
    assert (await api.client.get(f"/api/v1/tickets/{done['id']}", headers=api.admin)).json()[
        "organization_id"
    ] is None
    assert (await api.outbox_types()).count("ticket.updated") == 1
    # Another organization's people are not touched.
    jane = await api.client.get("/api/v1/contacts", params={"email": "jane@acme.test"}, headers=api.admin)
    assert all(c["organization_id"] != newco["id"] for c in jane.json()["items"])


async def _organization_events(api: Actors) -> list[dict[str, Any]]:
    async with api.runtime.sessions() as session:
        rows = await session.execute(
            select(outbox.c.event)
            .where(outbox.c.type == "organization.updated")
            .order_by(outbox.c.created_at)
        )
        return [json.loads(row.event)["data"] for row in rows]


async def test_the_first_tickets_contact_becomes_the_primary_contact(api: Actors) -> None:
    path = f"/api/v1/organizations/{api.org_a['id']}"
    assert (await api.client.get(path, headers=api.admin)).json()["primary_contact_id"] is None
    first = await api.client.post(
        "/api/v1/tickets",
        json=new_ticket(contact={"email": "wile@acme.test", "name": "Wile"}),
        headers=api.admin,
    )
    await api.client.post(
        "/api/v1/tickets", json=new_ticket(contact={"email": "road@acme.test"}), headers=api.admin
    )
    organization = (await api.client.get(path, headers=api.admin)).json()
    assert organization["primary_contact_id"] == first.json()["contact_id"]
    assert organization["billing_contact_id"] is None
    [announced] = await _organization_events(api)
    assert announced["primary_contact"] == {
        "id": first.json()["contact_id"],
        "email": "wile@acme.test",
        "name": "Wile",
    }
    assert announced["billing_contact"] is None


async def test_an_admin_names_the_billing_contact_among_the_organizations_contacts(api: Actors) -> None:
    path = f"/api/v1/organizations/{api.org_a['id']}"
    ours = (
        await api.client.post(
            "/api/v1/contacts",
            json={"email": "bills@acme.test", "organization_id": api.org_a["id"]},
            headers=api.admin,
        )
    ).json()
    theirs = (
        await api.client.post(
            "/api/v1/contacts",
            json={"email": "bills@globex.test", "organization_id": api.org_b["id"]},
            headers=api.admin,
        )
    ).json()
    refused = await api.client.patch(path, json={"billing_contact_id": theirs["id"]}, headers=api.admin)
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["errors"][0]["location"] == "body.billing_contact_id"
    assert (
        await api.client.patch(path, json={"billing_contact_id": ours["id"]}, headers=api.agent)
    ).status_code == 403

    named = await api.client.patch(path, json={"billing_contact_id": ours["id"]}, headers=api.admin)
    assert named.status_code == 200 and named.json()["billing_contact_id"] == ours["id"]
    assert (await _organization_events(api))[-1]["billing_contact"]["email"] == "bills@acme.test"

    # The contact moves to Globex: Acme has no billing contact any more, and says so.
    moved = await api.client.patch(
        f"/api/v1/contacts/{ours['id']}", json={"organization_id": api.org_b["id"]}, headers=api.admin
    )
    assert moved.status_code == 200
    assert (await api.client.get(path, headers=api.admin)).json()["billing_contact_id"] is None
    assert (await _organization_events(api))[-1]["billing_contact"] is None

    cleared = await api.client.patch(path, json={"billing_contact_id": None}, headers=api.admin)
    assert cleared.status_code == 200 and cleared.json()["billing_contact_id"] is None
