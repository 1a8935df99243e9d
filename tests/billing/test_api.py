"""billing's API on PostgreSQL: who sees what, plans and blocks, invoices (PDF, paid, void),
usage (JSON and CSV), the ledger and the close preview."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import httpx
import pytest
from pypdf import PdfReader
from redis.asyncio import Redis

from services.billing.app import create_app
from services.billing.deps import clock
from services.billing.settings import Settings
from tests.auth import admin, agent, bearer, customer, portal
from tests.billing.harness import Harness, Organization, Story, Ticket

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


@dataclass
class World:
    client: httpx.AsyncClient
    db: Harness
    story: Story
    acme: Organization
    globex: Organization
    open_ticket: Ticket
    invoice_id: str


@pytest.fixture
async def world(pg: Harness, redis_url: str, redis: Redis, tmp_path: Path) -> AsyncIterator[World]:
    story = Story()
    acme, acme_created = story.organization("Acme", "hourly")
    globex, globex_created = story.organization("Globex", "agreement")
    closed = story.ticket(acme)
    entry, logged = story.log(closed, 50, "Replaced the toner")
    await pg.deliver(
        acme_created, globex_created, logged, story.correct(entry, minutes=55), story.close(closed)
    )
    await pg.settle(story.tick(60))
    open_ticket = story.ticket(acme)
    await pg.deliver(story.log(open_ticket, 20, "Checked the drivers")[1])
    (invoice,) = await pg.invoices()

    settings = Settings(database_url=pg.url, redis_url=redis_url, var_dir=tmp_path, env="test")
    app = create_app(settings)
    app.dependency_overrides[clock] = lambda: NOW
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://billing.test") as client:
            yield World(client, pg, story, acme, globex, open_ticket, str(invoice.id))


API = "/api/v1/billing"


async def test_every_route_needs_a_token(world: World) -> None:
    for path in (f"{API}/accounts", f"{API}/invoices", f"{API}/invoices/{world.invoice_id}/pdf"):
        response = await world.client.get(path)
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"


async def test_other_organizations_data_answers_404(world: World) -> None:
    stranger = bearer(portal(world.globex.id))
    acme = world.acme.id
    for path in (
        f"/accounts/{acme}",
        f"/accounts/{acme}/plans",
        f"/accounts/{acme}/blocks",
        f"/accounts/{acme}/usage",
        f"/accounts/{acme}/usage.csv",
        f"/accounts/{acme}/ledger",
        f"/invoices/{world.invoice_id}",
        f"/invoices/{world.invoice_id}/pdf",
        f"/tickets/{world.open_ticket.id}/close-preview",
    ):
        response = await world.client.get(API + path, headers=stranger)
        assert response.status_code == 404, path
    listed = await world.client.get(f"{API}/invoices", headers=stranger)
    assert listed.json()["items"] == []
    accounts = await world.client.get(f"{API}/accounts", headers=stranger)
    assert [a["organization_id"] for a in accounts.json()["items"]] == [str(world.globex.id)]


async def test_customers_and_portals_without_billing_read_are_refused(world: World) -> None:
    """A customer is one contact: the books list colleagues' tickets, time and agents. A portal
    reads them only with the ``billing:read`` scope."""
    refused = {
        "customer": bearer(customer(world.acme.id)),
        "portal without billing:read": bearer(
            portal(world.acme.id, scopes=("tickets:read", "tickets:write"))
        ),
    }
    acme = world.acme.id
    for name, headers in refused.items():
        for path in (
            "/accounts",
            f"/accounts/{acme}",
            f"/accounts/{acme}/usage",
            f"/accounts/{acme}/ledger",
            "/invoices",
            f"/invoices/{world.invoice_id}",
            f"/invoices/{world.invoice_id}/pdf",
            f"/tickets/{world.open_ticket.id}/close-preview",
        ):
            response = await world.client.get(API + path, headers=headers)
            assert response.status_code == 403, (name, path, response.status_code)
            assert response.headers["content-type"] == "application/problem+json"
            assert "Replaced the toner" not in response.text


async def test_a_portal_with_billing_read_reads_its_invoice_and_pdf(world: World) -> None:
    headers = bearer(portal(world.acme.id, scopes=("billing:read",)))
    invoice = (await world.client.get(f"{API}/invoices/{world.invoice_id}", headers=headers)).json()
    assert invoice["number"] == "INV-2026-000001"
    assert invoice["ticket_number"] == "TKT-1"
    assert [(line["description"], line["minutes"], line["amount"]) for line in invoice["lines"]] == [
        ("Replaced the toner", 60, "150.00")
    ]
    assert (invoice["subtotal"], invoice["tax"], invoice["total"]) == ("150.00", "0.00", "150.00")
    response = await world.client.get(f"{API}/invoices/{world.invoice_id}/pdf", headers=headers)
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages)
    for expected in (
        "INVOICE INV-2026-000001",
        "Ticket: TKT-1",
        "Replaced the toner",
        "USD 150.00",
        "quoting the invoice number",
    ):
        assert expected in text, expected


async def test_admins_mark_paid_and_void_with_reason(world: World) -> None:
    path = f"{API}/invoices/{world.invoice_id}"
    assert (
        await world.client.post(f"{path}/void", json={"reason": "wrong"}, headers=bearer(agent()))
    ).status_code == 403
    paid = await world.client.post(f"{path}/mark-paid", headers=bearer(admin()))
    assert paid.json()["status"] == "paid" and paid.json()["paid_at"].startswith("2026-11-20")
    assert (await world.client.post(f"{path}/mark-paid", headers=bearer(admin()))).status_code == 200
    refused = await world.client.post(f"{path}/void", json={"reason": "too late"}, headers=bearer(admin()))
    assert refused.status_code == 409

    # A second invoice, voided.
    story = world.story
    story.reopen(world.open_ticket)
    await world.db.deliver(story.close(world.open_ticket))
    await world.db.settle(story.tick(60))
    second = (await world.client.get(f"{API}/invoices", headers=bearer(admin()))).json()["items"][0]
    voided = await world.client.post(
        f"{API}/invoices/{second['id']}/void",
        json={"reason": "Goodwill: printer under warranty"},
        headers=bearer(admin()),
    )
    assert (
        voided.json()["status"] == "void"
        and voided.json()["void_reason"] == "Goodwill: printer under warranty"
    )
    assert (
        await world.client.post(f"{API}/invoices/{second['id']}/mark-paid", headers=bearer(admin()))
    ).status_code == 409
    filtered = await world.client.get(f"{API}/invoices?status=void", headers=bearer(admin()))
    assert [i["number"] for i in filtered.json()["items"]] == ["INV-2026-000002"]


async def test_plan_versions_and_blocks(world: World) -> None:
    path = f"{API}/accounts/{world.acme.id}"
    body = {
        "kind": "block",
        "effective_from": "2026-11-15",
        "overage_rate_per_hour": "175.50",
        "increment_minutes": 15,
    }
    assert (
        await world.client.post(f"{path}/plans", json=body, headers=bearer(portal(world.acme.id)))
    ).status_code == 403
    created = await world.client.post(f"{path}/plans", json=body, headers=bearer(admin()))
    assert created.status_code == 201, created.text
    assert created.json()["version"] == 2 and created.json()["overage_rate_per_hour"] == "175.50"
    bad = await world.client.post(f"{path}/plans", json={**body, "surprise": 1}, headers=bearer(admin()))
    assert bad.status_code == 422
    block = await world.client.post(
        f"{path}/blocks", json={"minutes": 600, "reference": "PO-1"}, headers=bearer(admin())
    )
    assert block.status_code == 201 and block.json()["remaining_minutes"] == 600
    account = (await world.client.get(path, headers=bearer(portal(world.acme.id)))).json()
    assert account["plan"]["kind"] == "block" and account["prepaid_remaining_minutes"] == 600
    plans = (await world.client.get(f"{path}/plans", headers=bearer(admin()))).json()
    assert [(p["version"], p["kind"], p["effective_from"]) for p in plans] == [
        (1, "hourly", "2000-01-01"),
        (2, "block", "2026-11-15"),
    ]


async def test_usage_json_csv_and_ledger(world: World) -> None:
    headers = bearer(portal(world.acme.id))
    path = f"{API}/accounts/{world.acme.id}"
    usage = (await world.client.get(f"{path}/usage?period=2026-11", headers=headers)).json()
    assert (usage["period"], usage["logged_minutes"], usage["billable_minutes"]) == ("2026-11", 75, 75)
    assert usage["charged_minutes"] == 60 and usage["invoiced_total"] == {"USD": "150.00"}
    assert [(t["ticket_number"], t["billable_minutes"]) for t in usage["tickets"]] == [
        ("TKT-1", 55),
        ("TKT-2", 20),
    ]
    response = await world.client.get(f"{path}/usage.csv?period=2026-11", headers=headers)
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert sorted((row["ticket_number"], row["minutes"]) for row in rows) == [
        ("TKT-1", "55"),
        ("TKT-2", "20"),
    ]
    assert (await world.client.get(f"{path}/usage?period=2026-13", headers=headers)).status_code == 422

    first = (await world.client.get(f"{path}/ledger?limit=2", headers=headers)).json()
    rest = (await world.client.get(f"{path}/ledger?cursor={first['next_cursor']}", headers=headers)).json()
    entries = first["items"] + rest["items"]
    assert [(e["kind"], e["minutes"]) for e in entries] == [
        ("usage", 50),
        ("reversal", -50),
        ("usage", 55),
        ("usage", 20),
    ]
    assert rest["next_cursor"] is None


async def test_close_preview_writes_nothing(world: World) -> None:
    headers = bearer(agent())
    preview = await world.client.get(f"{API}/tickets/{world.open_ticket.id}/close-preview", headers=headers)
    assert preview.status_code == 200, preview.text
    body = preview.json()
    # 20 minutes round up to 30 (15-minute increments), which also meets the 30-minute minimum.
    assert [(line["description"], line["minutes"], line["amount"]) for line in body["lines"]] == [
        ("Checked the drivers", 30, "75.00")
    ]
    assert body["total"] == "75.00"
    again = await world.client.get(f"{API}/tickets/{world.open_ticket.id}/close-preview", headers=headers)
    assert again.json() == body
    assert len(await world.db.invoices()) == 1
    unknown = await world.client.get(f"{API}/tickets/{UUID(int=1)}/close-preview", headers=headers)
    assert unknown.status_code == 404


async def test_only_admins_close_periods_and_not_in_the_future(world: World) -> None:
    path = f"{API}/periods/close"
    for who in (agent(), portal(world.globex.id)):
        assert (await world.client.post(path, headers=bearer(who))).status_code == 403
    first = await world.client.post(path, headers=bearer(admin()))
    assert first.status_code == 200, first.text
    # On 20 November both accounts (opened on 10 November) have no complete month yet.
    assert first.json() == {
        "accounts_closed": 0,
        "overage_invoices": 0,
        "closes_charged": 0,
        "entries_swept": 0,
        "batches": 0,
        "finished": True,
    }
    future = await world.client.post(path, json={"as_of": "2026-12-01T12:00:00Z"}, headers=bearer(admin()))
    assert future.status_code == 422 and "as_of" in future.json()["detail"]
    naive = await world.client.post(path, json={"as_of": "2026-11-01T12:00:00"}, headers=bearer(admin()))
    assert naive.status_code == 422 and "as_of" in naive.text
    unknown = await world.client.post(
        path, json={"organization_id": str(UUID(int=7))}, headers=bearer(admin())
    )
    assert unknown.status_code == 404
