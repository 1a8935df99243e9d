"""The monthly period close: overage once per (account, period), at local midnight, across DST."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.exc import IntegrityError

from services.billing.accounts import add_plan
from services.billing.models import Invoice, InvoiceKind, PlanKind
from services.billing.period_close import due_accounts
from services.billing.repository import get_account
from services.billing.schemas import PlanCreate
from shared.ids import new_id
from tests.auth import admin
from tests.billing.harness import Harness, Organization, Story, Ticket

CHICAGO = ZoneInfo("America/Chicago")


def chicago(*args: int) -> datetime:
    return datetime(*args, tzinfo=CHICAGO).astimezone(UTC)


async def _agreement_with_closes(
    db: Harness, closes: list[tuple[datetime, int]]
) -> tuple[Story, Organization, list[Ticket]]:
    """Globex (600 minutes a month) with a ticket of ``minutes`` closed at each local time."""
    story = Story(now=chicago(2026, 10, 1, 9, 0))
    globex, created = story.organization("Globex", "agreement")
    await db.deliver(created)
    tickets = []
    for closed_at, minutes in closes:
        story.now = closed_at - timedelta(minutes=5)
        ticket = story.ticket(globex)
        _, logged = story.log(ticket, minutes)
        await db.deliver(logged, story.close(ticket))
        await db.settle(story.tick(10))
        tickets.append(ticket)
    return story, globex, tickets


async def test_the_month_ends_at_local_midnight_on_the_day_dst_ends(db: Harness) -> None:
    # 1 November 2026: Chicago leaves DST at 02:00. October ends at 00:00 CDT (05:00 UTC).
    await _agreement_with_closes(
        db,
        [
            (chicago(2026, 10, 20, 10, 0), 540),
            (chicago(2026, 10, 31, 23, 50), 120),  # still October in Chicago: 660 → 60 over
            (chicago(2026, 11, 1, 0, 10), 300),  # November (it is already 05:10 UTC)
        ],
    )
    # At 04:59 UTC it is 23:59 on 31 October in Chicago: the account's first month is not over.
    early = await db.close_periods(datetime(2026, 11, 1, 4, 59, tzinfo=UTC))
    assert (early.accounts_closed, early.overage_invoices) == (0, 0)
    report = await db.close_periods(datetime(2026, 11, 1, 5, 0, tzinfo=UTC))
    assert report.accounts_closed == 1 and report.overage_invoices == 1
    (invoice,) = await db.invoices()
    assert (invoice.kind, invoice.period_key) == (InvoiceKind.PERIOD_OVERAGE, "2026-10")
    (line,) = await db.lines(invoice.id)
    assert (line.minutes, line.amount) == (60, Decimal("120.00"))  # 60 min at 120.00/h

    # Again, and twice at once: nothing more.
    again = await db.close_periods(datetime(2026, 11, 1, 6, 0, tzinfo=UTC))
    assert again.accounts_closed == 0
    assert len(await db.invoices()) == 1


async def test_concurrent_period_closes_invoice_once(pg: Harness) -> None:
    await _agreement_with_closes(pg, [(chicago(2026, 10, 20, 10, 0), 700)])
    at = datetime(2026, 11, 2, tzinfo=UTC)
    reports = await asyncio.gather(*(pg.close_periods(at) for _ in range(3)))
    assert sum(report.overage_invoices for report in reports) == 1
    assert len(await pg.invoices()) == 1


async def test_the_unique_constraint_is_the_last_guard(pg: Harness) -> None:
    await _agreement_with_closes(pg, [(chicago(2026, 10, 20, 10, 0), 700)])
    await pg.close_periods(datetime(2026, 11, 2, tzinfo=UTC))
    (invoice,) = await pg.invoices()
    values = {**invoice.model_dump(), "id": new_id(), "number": "INV-2026-999999"}
    with pytest.raises(IntegrityError):
        async with pg.sessions() as session, session.begin():
            session.add(Invoice.model_validate(values))


async def test_time_logged_on_a_closed_ticket_is_drawn_at_the_period_close(db: Harness) -> None:
    story, globex, (ticket,) = await _agreement_with_closes(db, [(chicago(2026, 10, 20, 10, 0), 450)])
    story.now = chicago(2026, 10, 25, 10, 0)
    await db.deliver(story.log(ticket, 45)[1])  # ticket_status: closed
    await db.settle(story.tick(60))
    assert await db.charged(globex.id) == 450, "waits for the next close or the period close"
    report = await db.close_periods(datetime(2026, 11, 1, 5, 30, tzinfo=UTC))
    assert report.entries_swept == 1
    assert await db.charged(globex.id) == 495
    assert report.overage_invoices == 0  # 495 of 600


def test_due_accounts_are_those_whose_local_month_is_over_oldest_first() -> None:
    opened = datetime(2026, 8, 10, tzinfo=UTC)
    marks = [
        ("a", "America/Chicago", None, opened),
        ("b", "Asia/Tokyo", "2026-10", opened),
        ("c", "Asia/Tokyo", "2026-09", opened),
        ("d", "America/Chicago", "2026-09", opened),
        ("e", "Asia/Tokyo", None, datetime(2026, 10, 31, 16, 0, tzinfo=UTC)),  # 1 Nov in Tokyo
    ]
    now = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)  # 22:00 Oct 31 in Chicago, 12:00 Nov 1 in Tokyo
    # Each account's oldest open month that is over: a never closed one from its opening month.
    assert [(org, period.key) for org, period in due_accounts(marks, now)] == [
        ("a", "2026-08"),
        ("c", "2026-10"),
    ]


async def test_a_close_still_waiting_at_midnight_counts_in_its_own_month(db: Harness) -> None:
    story, globex, _ = await _agreement_with_closes(db, [(chicago(2026, 10, 20, 10, 0), 540)])
    story.now = chicago(2026, 10, 31, 23, 59, 50)
    late = story.ticket(globex)
    await db.deliver(story.log(late, 120)[1], story.close(late))  # settles 5 s after 23:59:51
    report = await db.close_periods(chicago(2026, 11, 1, 0, 0, 0))  # before that
    assert (report.closes_charged, report.overage_invoices) == (1, 1)
    (invoice,) = await db.invoices()
    assert (invoice.period_key, (await db.lines(invoice.id))[0].minutes) == ("2026-10", 60)
    assert await db.settle(chicago(2026, 11, 1, 0, 1, 0)) == 0, "already charged, never twice"


async def test_an_agreement_with_a_minimum_per_ticket_at_the_period_close(db: Harness) -> None:
    story = Story(now=chicago(2026, 10, 1, 9, 0))
    globex, created = story.organization("Globex", "agreement")
    await db.deliver(created)
    async with db.sessions() as session, session.begin():
        account = await get_account(session, globex.id)
        plan = PlanCreate(
            kind=PlanKind.AGREEMENT,
            effective_from=date(2026, 10, 1),
            increment_minutes=15,
            minimum_minutes_per_ticket=60,
        )
        await add_plan(session, db.billing.settings, admin(), account, plan)
    tickets = [story.ticket(globex) for _ in range(2)]
    for ticket in tickets:
        await db.deliver(story.log(ticket, 15)[1], story.close(ticket))
    await db.settle(story.tick(10))
    assert await db.charged(globex.id) == 120  # 15 + 45 minimum, twice
    story.now = chicago(2026, 10, 20, 9, 0)
    await db.deliver(story.log(tickets[0], 30)[1])  # on a closed ticket: 45 < 60, nothing more
    await db.deliver(story.log(tickets[1], 90)[1])  # 105 > 60: the minimum is given back
    await db.close_periods(chicago(2026, 11, 1, 0, 30))
    assert await db.charged(globex.id) == 60 + 105
