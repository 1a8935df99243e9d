"""Billing's books keep their own time (issue 22), through the API: invoices dated by the
close, periods closed oldest first and as of an instant, creating POSTs idempotent, blocks from
their purchase, overage priced once per close, notices readable, the low-block threshold per
plan, no numbered 0.00 invoice, reopens heard, the rounding increment explicit."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from redis.asyncio import Redis

from services.billing.app import create_app
from services.billing.deps import clock
from services.billing.settings import Settings
from shared.events import Event
from shared.ids import new_id
from shared.principal import Principal
from tests.auth import admin, bearer, portal
from tests.billing.harness import Harness, Organization, Story, Ticket
from tests.fixtures import events as kit

API = "/api/v1/billing"
CHICAGO = ZoneInfo("America/Chicago")
ADMIN = admin()  # one admin: Idempotency-Keys are scoped by caller


def chicago(*args: int) -> datetime:
    return datetime(*args, tzinfo=CHICAGO).astimezone(UTC)


@dataclass
class Books:
    client: httpx.AsyncClient
    db: Harness
    story: Story
    now: list[datetime] = field(default_factory=list)

    def at(self, instant: datetime) -> None:
        """The API's clock (the story's clock moves on its own)."""
        self.now[:] = [instant]

    async def get(self, path: str, who: Principal | None = None, **params: Any) -> Any:
        response = await self.client.get(API + path, params=params, headers=bearer(who or ADMIN))
        assert response.status_code == 200, response.text
        return response.json()

    async def post(
        self, path: str, body: Any = None, *, key: str | None = None, who: Principal | None = None
    ) -> httpx.Response:
        headers = bearer(who or ADMIN)
        if key is not None:
            headers["Idempotency-Key"] = key
        return await self.client.post(API + path, json=body, headers=headers)

    async def invoices(self, organization: Organization) -> list[dict[str, Any]]:
        page = await self.get("/invoices", organization_id=str(organization.id), limit=200)
        return sorted(page["items"], key=lambda invoice: invoice["number"])

    async def plan(self, organization: Organization, **body: Any) -> dict[str, Any]:
        response = await self.post(f"/accounts/{organization.id}/plans", body)
        assert response.status_code == 201, response.text
        plan: dict[str, Any] = response.json()
        return plan

    async def block(self, organization: Organization, **body: Any) -> dict[str, Any]:
        response = await self.post(f"/accounts/{organization.id}/blocks", body)
        assert response.status_code == 201, response.text
        block: dict[str, Any] = response.json()
        return block

    async def hourly(self, when: datetime, **plan: Any) -> Organization:
        """Acme, hourly from ``when`` (by default 150.00/h, 15-minute increments, 30-minute
        minimum), with ``plan`` from the first of that month when given."""
        self.story.now = when
        acme, created = self.story.organization("Acme", "hourly")
        await self.db.deliver(created)
        if plan:
            first = when.astimezone(CHICAGO).date().replace(day=1).isoformat()
            await self.plan(acme, kind="hourly", effective_from=first, **plan)
        return acme

    async def work(self, ticket: Ticket, *minutes: int, close: bool = True) -> list[Event]:
        """Time entries on ``ticket`` (and its close), as events not yet delivered."""
        events = [self.story.log(ticket, m)[1] for m in minutes]
        return [*events, self.story.close(ticket)] if close else events


@pytest.fixture
async def books(pg: Harness, redis_url: str, redis: Redis, tmp_path: Path) -> AsyncIterator[Books]:
    settings = Settings(database_url=pg.url, redis_url=redis_url, var_dir=tmp_path, env="test")
    app = create_app(settings)
    state = Books(httpx.AsyncClient(), pg, Story(now=chicago(2026, 9, 1, 9, 0)), [chicago(2026, 9, 1, 9, 0)])
    app.dependency_overrides[clock] = lambda: state.now[0]
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://billing.test") as client:
            state.client = client
            yield state


def lines(invoice: dict[str, Any]) -> list[tuple[str, int, str]]:
    return [(line["description"], line["minutes"], line["amount"]) for line in invoice["lines"]]


# --- an invoice is dated by its close ---------------------------------------------------------


async def test_late_out_of_order_events_around_the_year_end_are_dated_by_their_close(books: Books) -> None:
    story, db = books.story, books.db
    story.now = chicago(2026, 12, 31, 23, 0)
    acme, created = story.organization("Acme", "hourly")
    await db.deliver(created)
    last_year, this_year = story.ticket(acme), story.ticket(acme)
    story.now = chicago(2026, 12, 31, 23, 59, 40)
    december = await books.work(last_year, 50)  # closed at 23:59:43 on 31 December
    story.now = chicago(2027, 1, 1, 0, 0, 5)
    january = await books.work(this_year, 20)  # closed at 00:00:08 on 1 January

    # January's events arrive first, reversed, and are charged at 03:00; December's arrive
    # six hours late, reversed too, and are charged after January's invoice was issued.
    await db.deliver(*reversed(january))
    assert await db.settle(chicago(2027, 1, 1, 3, 0)) == 1
    await db.deliver(*reversed(december))
    assert await db.settle(chicago(2027, 1, 1, 6, 0)) == 1

    first, second = await books.invoices(acme)
    assert (first["number"], first["ticket_number"]) == ("INV-2026-000001", last_year.number)
    assert (first["invoice_date"], first["due_date"]) == ("2026-12-31", "2027-01-30")
    assert datetime.fromisoformat(first["issued_at"]) == december[-1].occurred_at
    assert lines(first) == [("Work", 60, "150.00")]
    assert (second["number"], second["ticket_number"]) == ("INV-2027-000001", this_year.number)
    assert (second["invoice_date"], second["due_date"]) == ("2027-01-01", "2027-01-31")
    # The usage report counts each invoice in the month of its close, not of its charge.
    december_usage = await books.get(f"/accounts/{acme.id}/usage", period="2026-12")
    assert december_usage["invoiced_total"] == {"USD": "150.00"}
    assert december_usage["charged_minutes"] == 60


async def test_the_plan_of_the_close_instant_prices_a_late_close(books: Books) -> None:
    story, db = books.story, books.db
    acme = await books.hourly(chicago(2026, 11, 30, 12, 0))
    await books.plan(
        acme, kind="hourly", effective_from="2026-12-01", rate_per_hour="200.00", increment_minutes=15
    )
    ticket = story.ticket(acme)
    events = await books.work(ticket, 60)  # closed on 30 November, charged in December
    await db.deliver(*events)
    await db.settle(chicago(2026, 12, 2, 9, 0))
    (invoice,) = await books.invoices(acme)
    assert (invoice["invoice_date"], invoice["total"]) == ("2026-11-30", "150.00")


# --- periods: no month skipped, closed as of an instant ---------------------------------------


async def _agreement(books: Books, name: str, allowance: int) -> Organization:
    organization, created = books.story.organization(name, "agreement")
    await books.db.deliver(created)
    await books.plan(
        organization,
        kind="agreement",
        effective_from="2026-09-01",
        allowance_minutes=allowance,
        increment_minutes=15,
    )
    return organization


async def _month(books: Books, organization: Organization, when: datetime, minutes: int) -> None:
    books.story.now = when
    await books.db.deliver(*await books.work(books.story.ticket(organization), minutes))
    await books.db.settle(books.story.tick(10))


async def test_an_outage_over_two_month_ends_leaves_no_period_unclosed(books: Books) -> None:
    globex = await _agreement(books, "Globex", 60)
    await _month(books, globex, chicago(2026, 9, 10, 10, 0), 120)  # 60 over
    await _month(books, globex, chicago(2026, 10, 10, 10, 0), 30)
    await _month(books, globex, chicago(2026, 11, 10, 10, 0), 90)  # 30 over
    # September was closed on time; then nothing ran from October to 2 December.
    books.at(chicago(2026, 10, 1, 0, 10))
    first = (await books.post("/periods/close")).json()
    assert (first["accounts_closed"], first["overage_invoices"]) == (1, 1)
    books.at(chicago(2026, 12, 2, 9, 0))
    caught_up = await books.post("/periods/close")
    assert caught_up.status_code == 200, caught_up.text
    assert (caught_up.json()["accounts_closed"], caught_up.json()["overage_invoices"]) == (2, 1)
    account = await books.get(f"/accounts/{globex.id}")
    assert account["closed_through"] == "2026-11"
    invoices = await books.invoices(globex)
    assert [(i["period"], i["invoice_date"], lines(i)[0][1:]) for i in invoices] == [
        ("2026-09", "2026-10-01", (60, "120.00")),
        ("2026-11", "2026-12-01", (30, "60.00")),
    ]
    again = (await books.post("/periods/close")).json()
    assert (again["accounts_closed"], again["overage_invoices"]) == (0, 0)


async def test_a_month_closed_late_invoices_its_overage_and_every_month_after(books: Books) -> None:
    """The issue's case: 120 of 60 minutes in September, nothing closed until December."""
    globex = await _agreement(books, "Globex", 60)
    await _month(books, globex, chicago(2026, 9, 10, 10, 0), 120)
    books.at(chicago(2026, 12, 3, 12, 0))
    report = (await books.post("/periods/close")).json()
    assert (report["accounts_closed"], report["overage_invoices"], report["finished"]) == (3, 1, True)
    (invoice,) = await books.invoices(globex)
    assert (invoice["period"], invoice["number"], lines(invoice)[0][1]) == ("2026-09", "INV-2026-000001", 60)


async def test_an_admin_closes_one_organization_as_of_an_instant_once(books: Books) -> None:
    globex = await _agreement(books, "Globex", 60)
    initech = await _agreement(books, "Initech", 60)
    await _month(books, globex, chicago(2026, 9, 10, 10, 0), 90)
    await _month(books, initech, chicago(2026, 9, 12, 10, 0), 75)
    await _month(books, initech, chicago(2026, 10, 12, 10, 0), 105)
    books.at(chicago(2026, 12, 3, 12, 0))
    body = {"organization_id": str(initech.id), "as_of": "2026-11-01T05:00:00Z"}  # midnight in Chicago
    first = await books.post("/periods/close", body, key="audit-initech-1")
    assert first.status_code == 200, first.text
    assert (first.json()["accounts_closed"], first.json()["overage_invoices"]) == (2, 2)
    replay = await books.post("/periods/close", body, key="audit-initech-1")
    assert replay.json() == first.json() and replay.headers["Idempotent-Replayed"] == "true"
    again = await books.post("/periods/close", body)
    assert again.json()["accounts_closed"] == 0, "closing what is closed changes nothing"
    assert (await books.get(f"/accounts/{initech.id}"))["closed_through"] == "2026-10"
    assert (await books.get(f"/accounts/{globex.id}"))["closed_through"] is None
    assert [(i["period"], lines(i)[0][1]) for i in await books.invoices(initech)] == [
        ("2026-09", 15),
        ("2026-10", 45),
    ]
    reused = await books.post("/periods/close", {"as_of": "2026-11-01T05:00:00Z"}, key="audit-initech-1")
    assert reused.status_code == 422 and reused.json()["type"].endswith("idempotency-key-reused")


# --- nothing bought twice ---------------------------------------------------------------------


async def test_a_block_purchase_retried_with_the_same_key_creates_one_block(books: Books) -> None:
    initech, created = books.story.organization("Initech", "hourly")
    await books.db.deliver(created)
    path = f"/accounts/{initech.id}/blocks"
    body = {"minutes": 600, "reference": "PO-4711"}
    answers = [await books.post(path, body, key="po-4711") for _ in range(3)]
    assert {a.status_code for a in answers} == {201}
    assert len({a.json()["id"] for a in answers}) == 1
    assert [a.headers.get("Idempotent-Replayed") for a in answers] == [None, "true", "true"]
    assert len(await books.get(path)) == 1
    other = await books.post(path, {**body, "minutes": 60}, key="po-4711")
    assert other.status_code == 422 and other.headers["content-type"] == "application/problem+json"
    # Another admin's key is their own; without a key each POST is a purchase.
    assert (await books.post(path, body, key="po-4711", who=admin(new_id()))).status_code == 201
    assert len(await books.get(path)) == 2


async def test_a_plan_posted_twice_with_one_key_is_one_version(books: Books) -> None:
    acme, created = books.story.organization("Acme", "hourly")
    await books.db.deliver(created)
    path = f"/accounts/{acme.id}/plans"
    body = {
        "kind": "hourly",
        "effective_from": "2026-10-01",
        "rate_per_hour": "180.00",
        "increment_minutes": 6,
    }
    first, second = [await books.post(path, body, key="plan-oct") for _ in range(2)]
    assert first.status_code == second.status_code == 201 and first.json() == second.json()
    assert [p["version"] for p in await books.get(path)] == [1, 2]


# --- a block covers time from its purchase ----------------------------------------------------


async def _on_blocks(books: Books, increment: int, **plan: Any) -> Organization:
    """Initech, hourly until a block plan from 1 November (overage 100.00/h); no block yet."""
    books.story.now = chicago(2026, 11, 2, 9, 0)
    initech, created = books.story.organization("Initech", "hourly")
    await books.db.deliver(created)
    await books.plan(
        initech,
        kind="block",
        effective_from="2026-11-01",
        overage_rate_per_hour="100.00",
        increment_minutes=increment,
        **plan,
    )
    return initech


async def test_a_block_covers_nothing_closed_before_it_was_bought(books: Books) -> None:
    story, db = books.story, books.db
    initech = await _on_blocks(books, 15)
    before, after = story.ticket(initech), story.ticket(initech)
    story.now = chicago(2026, 11, 19, 10, 0)
    early = await books.work(before, 30)  # closed on 19 November
    books.at(chicago(2026, 11, 20, 12, 0))
    block = await books.block(initech, minutes=600, purchased_at=chicago(2026, 11, 20, 12, 0).isoformat())
    story.now = chicago(2026, 11, 21, 10, 0)
    late = await books.work(after, 45)
    await db.deliver(*late, *early)  # the 19 November close arrives after the purchase
    await db.settle(chicago(2026, 11, 21, 11, 0))
    (invoice,) = await books.invoices(initech)
    assert invoice["ticket_number"] == before.number
    assert lines(invoice) == [("Time beyond prepaid hours", 30, "50.00")]
    (now_block,) = await books.get(f"/accounts/{initech.id}/blocks")
    assert (now_block["id"], now_block["used_minutes"]) == (block["id"], 45)


# --- overage summed, then rounded once --------------------------------------------------------


async def test_overage_beyond_a_block_is_summed_then_rounded_once(books: Books) -> None:
    story, db = books.story, books.db
    initech = await _on_blocks(books, 1)
    books.at(story.now)
    await books.block(initech, minutes=10, purchased_at=story.now.isoformat())
    ticket = story.ticket(initech)
    story.tick(60)
    logged = [story.log(ticket, minutes) for minutes in (10, 1, 1, 1)]
    await db.deliver(*(event for _, event in logged), story.close(ticket))
    await db.settle(story.tick(10))
    (invoice,) = await books.invoices(initech)
    assert lines(invoice) == [("Time beyond prepaid hours", 3, "5.00")]  # not 3 × 1.67 = 5.01

    # One of the minutes was a mistake: the credit brings the ticket to 2 minutes priced once.
    await db.deliver(story.reopen(ticket), story.delete(logged[1][0]), story.close(ticket))
    await db.settle(story.tick(10))
    _, credit = await books.invoices(initech)
    assert lines(credit) == [("Correction: time beyond prepaid hours", -1, "-1.67")]
    assert Decimal(invoice["total"]) + Decimal(credit["total"]) == Decimal("3.33")  # 2 min at 100.00/h


# --- notices through the API -----------------------------------------------------------------


async def test_allowance_and_block_notices_are_read_through_the_api(books: Books) -> None:
    story, db = books.story, books.db
    globex = await _agreement(books, "Globex", 60)
    await _month(books, globex, chicago(2026, 9, 10, 10, 0), 45)  # 75 %
    await _month(books, globex, chicago(2026, 9, 11, 10, 0), 15)  # 100 %: both thresholds at once
    await _month(books, globex, chicago(2026, 10, 11, 10, 0), 60)
    initech, created = story.organization("Initech", "block")  # its initial 1,200-minute block
    await db.deliver(created)
    await _month(books, initech, chicago(2026, 10, 12, 10, 0), 1200)

    globex_notices = await books.get("/notices", organization_id=str(globex.id))
    assert [(n["kind"], n["period"], n["used_minutes"], n["allowance_minutes"]) for n in globex_notices] == [
        ("allowance.80", "2026-09", 60, 60),
        ("allowance.100", "2026-09", 60, 60),
        ("allowance.80", "2026-10", 60, 60),
        ("allowance.100", "2026-10", 60, 60),
    ]
    september = await books.get(
        "/notices", organization_id=str(globex.id), period="2026-09", kind="allowance.80"
    )
    assert len(september) == 1
    assert (
        datetime.fromisoformat(september[0]["occurred_at"]).astimezone(CHICAGO).date().isoformat()
        == "2026-09-11"
    )

    # A portal with billing:read reads its own organization's notices, and only those.
    mine = await books.get("/notices", who=portal(initech.id))
    assert [(n["kind"], n["period"], n["remaining_minutes"], n["purchased_minutes"]) for n in mine] == [
        ("block.low", "2026-10", 0, 1200),
        ("block.exhausted", "2026-10", 0, 1200),
    ]
    assert mine[0]["threshold_percent"] == 20 and mine[0]["newest_block_id"] is not None
    assert await books.get("/notices", who=portal(initech.id), organization_id=str(globex.id)) == []
    bad = await books.client.get(f"{API}/notices", params={"kind": "block.gone"}, headers=bearer(admin()))
    assert bad.status_code == 422 and "kind" in bad.text
    assert (await books.client.get(f"{API}/notices")).status_code == 401


# --- the low-block threshold per plan, re-armed by a new block --------------------------------


async def test_the_low_block_threshold_is_the_plans_and_a_new_block_rearms_it(books: Books) -> None:
    story = books.story
    initech = await _on_blocks(books, 15, block_low_threshold_percent=50)
    (_, plan) = await books.get(f"/accounts/{initech.id}/plans")
    assert plan["block_low_threshold_percent"] == 50
    books.at(story.now)
    await books.block(initech, minutes=100, purchased_at=story.now.isoformat())

    async def close(minutes: int) -> list[tuple[str, int | None]]:
        await _month(books, initech, story.tick(3600), minutes)
        notices = await books.get("/notices", organization_id=str(initech.id), kind="block.low")
        return [(n["newest_block_id"], n["remaining_minutes"]) for n in notices]

    assert await close(45) == [], "55 of 100 left: above 50 %"
    (first,) = await close(15)  # 40 left
    assert first[1] == 40
    assert len(await close(15)) == 1, "once per purchase"
    books.at(story.tick(60))
    second_block = await books.block(initech, minutes=100, purchased_at=story.now.isoformat())
    assert len(await close(15)) == 1, "110 of 200 left: above 50 %"
    rearmed = await close(15)  # 95 of 200
    assert rearmed[-1] == (second_block["id"], 95)
    default = await books.get(f"/accounts/{initech.id}/plans")
    assert default[0]["block_low_threshold_percent"] == 20  # BILLING_BLOCK_LOW_THRESHOLD_PERCENT


# --- no numbered 0.00 invoice ----------------------------------------------------------------


async def test_a_reopen_whose_minimum_is_credited_back_gets_no_numbered_invoice(books: Books) -> None:
    story, db = books.story, books.db
    acme = await books.hourly(chicago(2026, 11, 2, 9, 0))  # 15-minute increments, 30-minute minimum
    ticket = story.ticket(acme)
    await db.deliver(*await books.work(ticket, 10))
    await db.settle(story.tick(10))
    (first,) = await books.invoices(acme)
    assert lines(first) == [("Work", 15, "37.50"), ("Minimum charge per ticket", 15, "37.50")]

    # Reopened, 15 more minutes: the minimum is no longer needed; nothing is left to pay.
    await db.deliver(story.reopen(ticket), *await books.work(ticket, 15))
    await db.settle(story.tick(10))
    assert [i["number"] for i in await books.invoices(acme)] == ["INV-2026-000001"]
    preview = await books.get(f"/tickets/{ticket.id}/close-preview")
    assert preview["lines"] == [] and preview["total"] == "0.00", "charged all the same"

    # The next invoice takes the next number: no gap, no 0.00 in between.
    other = story.ticket(acme)
    await db.deliver(*await books.work(other, 45))
    await db.settle(story.tick(10))
    assert [i["number"] for i in await books.invoices(acme)] == ["INV-2026-000001", "INV-2026-000002"]


# --- reopens heard, whatever the order ------------------------------------------------------


def _reopen_story(story: Story, ticket: Ticket) -> tuple[list[Event], list[Event]]:
    """Closed with 30 minutes; 10 minutes logged on the closed ticket; reopened; 45 minutes;
    closed again. Returns (up to the first close, the rest)."""
    first = [story.log(ticket, 30, "Diagnosis")[1], story.close(ticket)]
    rest = [
        story.log(ticket, 10, "Follow-up call")[1],
        story.reopen(ticket),
        story.log(ticket, 45, "Repair")[1],
        story.close(ticket),
    ]
    return first, rest


async def test_a_first_close_charged_late_bills_only_what_came_before_it(books: Books) -> None:
    story, db = books.story, books.db
    acme = await books.hourly(chicago(2026, 11, 2, 9, 0))
    ticket = story.ticket(acme)
    first, rest = _reopen_story(story, ticket)
    # Billing is behind: the reopen and the repair arrive before the first close is charged.
    await db.deliver(*first, *rest[:3])
    await db.settle(story.tick(10))
    (invoice,) = await books.invoices(acme)
    assert lines(invoice) == [("Diagnosis", 30, "75.00")]
    await db.deliver(rest[3])
    await db.settle(story.tick(10))
    _, second = await books.invoices(acme)
    assert sorted(lines(second)) == [("Follow-up call", 15, "37.50"), ("Repair", 45, "112.50")]


async def test_a_reopen_and_second_close_bill_the_same_in_any_order(books: Books) -> None:
    """Shuffled, with billing charging closes at a random point between deliveries: each entry
    is billed once, at its rounded minutes, and the ticket's total is the same."""
    for seed in range(6):
        rng = random.Random(seed)
        story = books.story
        story.now = chicago(2026, 11, 2 + seed, 9, 0)
        acme, created = story.organization(f"Acme{seed}", "hourly")
        first, rest = _reopen_story(story, story.ticket(acme))
        events = [*first, *rest]
        rng.shuffle(events)
        split = rng.randint(0, len(events))
        await books.db.deliver(created, *events[:split])
        await books.db.settle(story.tick(10))
        await books.db.deliver(*events[split:])
        await books.db.settle(story.tick(10))
        invoices = await books.invoices(acme)
        billed: dict[str, int] = {}
        for invoice in invoices:
            for description, minutes, _ in lines(invoice):
                what = description.removeprefix("Correction: ")
                billed[what] = billed.get(what, 0) + minutes
        assert {d: m for d, m in billed.items() if m} == {"Diagnosis": 30, "Follow-up call": 15, "Repair": 45}
        assert sum(Decimal(i["total"]) for i in invoices) == Decimal("225.00"), (seed, invoices)


async def test_time_on_a_closed_ticket_reopened_waits_for_its_next_close(books: Books) -> None:
    globex = await _agreement(books, "Globex", 600)
    story, db = books.story, books.db
    story.now = chicago(2026, 9, 20, 9, 0)
    ticket = story.ticket(globex)
    first, rest = _reopen_story(story, ticket)
    await db.deliver(*first, *rest[:2])  # closed, 10 minutes logged on it, reopened
    await db.settle(story.tick(10))
    books.at(chicago(2026, 10, 1, 6, 0))
    report = (await books.post("/periods/close")).json()
    assert report["entries_swept"] == 0, "the ticket is open again: its next close charges it"
    assert (await books.get(f"/accounts/{globex.id}/usage", period="2026-09"))["allowance"][
        "used_minutes"
    ] == 30
    story.now = chicago(2026, 10, 2, 9, 0)
    await db.deliver(story.log(ticket, 45)[1], story.close(ticket))
    await db.settle(story.tick(10))
    october = await books.get(f"/accounts/{globex.id}/usage", period="2026-10")
    assert october["allowance"]["used_minutes"] == 15 + 45


# --- the rounding increment is explicit -------------------------------------------------------


async def test_a_plan_says_its_increment_and_the_usage_report_shows_it(books: Books) -> None:
    globex, created = books.story.organization("Globex", "agreement")
    await books.db.deliver(created)
    usage = await books.get(f"/accounts/{globex.id}/usage", period="2026-09")
    assert (usage["increment_minutes"], usage["minimum_minutes_per_ticket"]) == (15, 0)  # the default
    missing = await books.post(
        f"/accounts/{globex.id}/plans",
        {"kind": "agreement", "effective_from": "2026-09-01", "allowance_minutes": 60},
    )
    assert missing.status_code == 422
    assert [e["location"] for e in missing.json()["errors"]] == ["body.increment_minutes"]
    await books.plan(
        globex, kind="agreement", effective_from="2026-09-01", allowance_minutes=60, increment_minutes=6
    )
    usage = await books.get(f"/accounts/{globex.id}/usage", period="2026-09")
    assert usage["increment_minutes"] == 6
    await _month(books, globex, chicago(2026, 9, 10, 10, 0), 7)
    used = (await books.get(f"/accounts/{globex.id}/usage", period="2026-09"))["allowance"]["used_minutes"]
    assert used == 12  # 7 minutes drawn in 6-minute increments


async def test_a_correction_leaves_no_rounding_cent_behind(books: Books) -> None:
    story, db = books.story, books.db
    acme = await books.hourly(chicago(2026, 11, 2, 9, 0), rate_per_hour="100.00", increment_minutes=1)
    ticket = story.ticket(acme)
    entry, logged = story.log(ticket, 31, "Setup")
    await db.deliver(logged, story.close(ticket))
    await db.settle(story.tick(10))
    await db.deliver(story.reopen(ticket), story.correct(entry, minutes=32), story.close(ticket))
    await db.settle(story.tick(10))
    first, second = await books.invoices(acme)
    assert lines(first) == [("Setup", 31, "51.67")]
    assert lines(second) == [("Setup", 1, "1.66")]  # 32 minutes are 53.33, not 51.67 + 1.67


# --- whom notices and invoices go to ----------------------------------------------------------


async def test_notices_and_invoices_go_to_the_billing_contact_else_the_primary_contact(books: Books) -> None:
    """Without a billing address, an agreement's 80 % notice and its overage invoice go to the
    organization's billing contact, else its primary contact; the account says which."""
    story, db = books.story, books.db
    globex = await _agreement(books, "Globex", 120)
    account = await books.get(f"/accounts/{globex.id}")
    assert (account["notices_to"], account["notices_to_source"]) == (None, "accounting")

    primary = kit.contact_ref(email="pat@globex.test", name="Pat")
    await db.deliver(
        kit.organization_updated(occurred_at=story.tick(), **globex.fields(), primary_contact=primary)
    )
    account = await books.get(f"/accounts/{globex.id}")
    assert (account["notices_to"], account["notices_to_source"]) == ("pat@globex.test", "primary_contact")

    await _month(books, globex, chicago(2026, 9, 10, 10, 0), 100)  # 105 of 120 minutes: 80 %
    [notice] = await db.outbox_events("allowance.threshold_reached")
    assert (notice.data["threshold"], notice.data["billing_email"]) == (80, "pat@globex.test")

    bills = kit.contact_ref(email="bills@globex.test", name="Accounts payable")
    await db.deliver(
        kit.organization_updated(
            occurred_at=story.tick(), **globex.fields(), primary_contact=primary, billing_contact=bills
        )
    )
    account = await books.get(f"/accounts/{globex.id}")
    assert (account["notices_to"], account["notices_to_source"]) == ("bills@globex.test", "billing_contact")
    await _month(books, globex, chicago(2026, 9, 20, 10, 0), 60)  # over the allowance: 100 %
    assert [
        (e.data["threshold"], e.data["billing_email"])
        for e in await db.outbox_events("allowance.threshold_reached")
    ] == [
        (80, "pat@globex.test"),
        (100, "bills@globex.test"),
    ]
    books.at(chicago(2026, 10, 1, 0, 10))
    assert (await books.post("/periods/close")).status_code == 200
    [overage] = [i for i in await books.invoices(globex) if i["period"] == "2026-09"]
    [issued] = [e for e in await db.outbox_events("invoice.issued") if e.data["invoice_id"] == overage["id"]]
    assert issued.data["bill_to_email"] == "bills@globex.test"

    # An admin's billing address still comes first.
    response = await books.client.patch(
        f"{API}/accounts/{globex.id}", json={"billing_email": "ap@globex.test"}, headers=bearer(ADMIN)
    )
    assert response.status_code == 200, response.text
    assert (response.json()["notices_to"], response.json()["notices_to_source"]) == (
        "ap@globex.test",
        "billing_email",
    )
