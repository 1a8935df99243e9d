"""notifier's API: the notification log, resend, suppressions, webhook subscriptions and their
delivery log, each authorized per object (another client's rows answer 404)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import uuid4

import httpx
import pytest
from fastapi import FastAPI

from services.notifier import repository as repo
from services.notifier.app import create_app
from tests.auth import admin, agent, bearer, customer, portal
from tests.notifier.conftest import Env, Receiver, TicketStory, agent_event, organization

ORG = organization(sla_signed=True)
OTHER_ORG = uuid4()


@dataclass
class Api:
    client: httpx.AsyncClient
    app: FastAPI


@pytest.fixture
async def api(env: Env) -> AsyncIterator[Api]:
    app = create_app(env.settings)
    async with app.router.lifespan_context(app):
        app.state.notifier.clock = env.clock  # the worker in these tests runs on the same clock
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://notifier.test") as client:
            yield Api(client, app)
        await app.state.notifier.dispatcher.drain()


async def test_the_notification_log_is_scoped_and_a_resend_threads_a_copy(env: Env, api: Api) -> None:
    agent_id = uuid4()
    story = TicketStory(org=ORG)
    await env.deliver(agent_event(agent_id), story.created())
    story.assignee_id = agent_id
    await env.deliver(story.message("Still broken.", author="customer"))
    staff, mine, theirs = bearer(agent()), bearer(portal(ORG.id)), bearer(portal(OTHER_ORG))

    response = await api.client.get(f"/api/v1/notifications?ticket_id={story.ticket_id}", headers=staff)
    assert response.status_code == 200, response.text
    assert [n["kind"] for n in response.json()["items"]] == ["acknowledgment", "customer_reply_consultant"]
    ack = response.json()["items"][0]
    assert (ack["recipient"], ack["state"], ack["ticket_number"]) == ("jane@acme.test", "sent", "TKT-1")
    # Sent mail carries signed links that act for its recipient: only staff read the log, not
    # the organization's own portal, nor a customer, nor a colleague of the recipient.
    colleague = bearer(customer(ORG.id))
    for outsider in (mine, theirs, colleague):
        for path in ("/api/v1/notifications", f"/api/v1/notifications/{ack['id']}"):
            response = await api.client.get(path, headers=outsider)
            assert response.status_code == 403, (path, response.status_code)
            assert "TKT-1" not in response.text
        response = await api.client.post(f"/api/v1/notifications/{ack['id']}/resend", headers=outsider)
        assert response.status_code == 403
    assert (await api.client.get(f"/api/v1/notifications/{ack['id']}")).status_code == 401
    detail = (await api.client.get(f"/api/v1/notifications/{ack['id']}", headers=staff)).json()
    assert "TKT-1" in detail["text_body"] and detail["reply_to"].startswith("support+")

    response = await api.client.post(f"/api/v1/notifications/{ack['id']}/resend", headers=staff)
    assert response.status_code == 201, response.text
    assert response.json()["resend_of"] == ack["id"] and response.json()["state"] == "pending"
    await env.run_worker()
    first, _to_consultant, again = env.mail()
    assert again["Subject"] == first["Subject"] and again["Message-ID"] != first["Message-ID"]
    assert first["Message-ID"] in again["References"]


async def test_suppressions_are_listed_for_staff_and_lifted_by_admins(env: Env, api: Api) -> None:
    async with env.runtime.sessions() as session, session.begin():
        await repo.add_suppression(
            session,
            {
                "address": "gone@acme.test",
                "reason": "550 no such user",
                "smtp_code": 550,
                "created_at": datetime.now(UTC),
            },
        )
    response = await api.client.get("/api/v1/notifications/suppressions", headers=bearer(agent()))
    assert [s["address"] for s in response.json()["items"]] == ["gone@acme.test"]
    assert (
        await api.client.get("/api/v1/notifications/suppressions", headers=bearer(portal(ORG.id)))
    ).status_code == 403
    url = "/api/v1/notifications/suppressions/Gone@acme.test"
    assert (await api.client.delete(url, headers=bearer(agent()))).status_code == 403
    assert (await api.client.delete(url, headers=bearer(admin()))).status_code == 204
    assert (await api.client.delete(url, headers=bearer(admin()))).status_code == 404


async def test_portals_manage_their_own_webhooks_and_read_the_delivery_log(
    env: Env, api: Api, receiver: Receiver
) -> None:
    owner = portal(ORG.id)
    mine, theirs = bearer(owner), bearer(portal(ORG.id))
    body = {"url": receiver.url("/hook"), "event_types": ["ticket.created", "ticket.closed"]}
    assert (
        await api.client.post("/api/v1/webhooks/subscriptions", json=body, headers=bearer(agent()))
    ).status_code == 403
    bad = {**body, "event_types": ["ticket.created", "invoice.paid"]}
    response = await api.client.post("/api/v1/webhooks/subscriptions", json=bad, headers=mine)
    assert response.status_code == 422 and response.json()["unknown"] == ["invoice.paid"]
    response = await api.client.post("/api/v1/webhooks/subscriptions", json=body, headers=mine)
    assert response.status_code == 201, response.text
    subscription = response.json()
    assert subscription["secret"].startswith("whsec_") and subscription["organization_ids"] == [str(ORG.id)]
    sub_url = f"/api/v1/webhooks/subscriptions/{subscription['id']}"
    assert (await api.client.get(sub_url, headers=theirs)).status_code == 404
    assert (await api.client.get("/api/v1/webhooks/subscriptions", headers=theirs)).json()["items"] == []
    everyone = (await api.client.get("/api/v1/webhooks/subscriptions", headers=bearer(admin()))).json()[
        "items"
    ]
    assert [s["id"] for s in everyone] == [subscription["id"]] and "secret" not in everyone[0]

    await env.deliver(TicketStory(org=ORG).created())
    deliveries = (await api.client.get(f"{sub_url}/deliveries", headers=mine)).json()["items"]
    assert [(d["event_type"], d["state"], d["attempts"]) for d in deliveries] == [
        ("ticket.created", "sent", 1)
    ]
    delivery_url = f"/api/v1/webhooks/deliveries/{deliveries[0]['id']}"
    assert (await api.client.get(delivery_url, headers=theirs)).status_code == 404
    detail = (await api.client.get(delivery_url, headers=mine)).json()
    assert [a["status_code"] for a in detail["attempt_log"]] == [200] and '"ticket.created"' in detail["body"]

    response = await api.client.post(f"{delivery_url}/redeliver", headers=mine)
    assert response.status_code == 202, response.text
    await env.run_worker()
    assert [r.headers["webhook-id"] for r in receiver.received] == [deliveries[0]["id"]] * 2

    response = await api.client.patch(sub_url, json={"active": False}, headers=mine)
    assert response.json()["active"] is False
    assert (await api.client.delete(sub_url, headers=theirs)).status_code == 404
    assert (await api.client.delete(sub_url, headers=mine)).status_code == 204


async def test_webhook_urls_pointing_inside_are_refused(env: Env) -> None:
    settings = env.settings.model_copy(update={"webhook_allow_private_addresses": False})
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://notifier.test") as client:
            for url in ("http://169.254.169.254/latest/meta-data", "http://127.0.0.1:8101/api/v1/tickets"):
                response = await client.post(
                    "/api/v1/webhooks/subscriptions",
                    json={"url": url, "event_types": ["ticket.created"]},
                    headers=bearer(admin()),
                )
                assert response.status_code == 422, response.text
                assert response.json()["type"].endswith("webhook-url-refused")
