"""Charging at close, by tier (story S7), through the consumer and the settle cron."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from services.billing.models import ChargeKind
from shared import events as ev
from shared.consumer import Outcome
from tests.billing.harness import Harness, Story


async def test_an_hourly_close_issues_one_numbered_invoice_with_rounded_lines(db: Harness) -> None:
    story = Story()
    acme, created = story.organization("Acme", "hourly")
    ticket = story.ticket(acme)
    _, first = story.log(ticket, 40, "Diagnosed the printer")
    _, second = story.log(ticket, 50, "Replaced the network card")
    closed = story.close(ticket)
    await db.deliver(created, first, second, closed)

    assert await db.settle(story.now) == 0, "a close waits for its settle delay"
    assert await db.settle(story.now + timedelta(seconds=5)) == 1
    (invoice,) = await db.invoices()
    year = story.now.year
    assert invoice.number == f"INV-{year}-000001"
    assert invoice.ticket_number == ticket.number
    lines = await db.lines(invoice.id)
    assert [(line.description, line.minutes, line.amount) for line in lines] == [
        ("Diagnosed the printer", 45, Decimal("112.50")),
        ("Replaced the network card", 60, Decimal("150.00")),
    ]
    assert (invoice.subtotal, invoice.tax, invoice.total) == (
        Decimal("262.50"),
        Decimal("0.00"),
        Decimal("262.50"),
    )
    assert invoice.due_date == invoice.invoice_date + timedelta(days=30)
    assert invoice.bill_to_email == "jane@acme.test"
    (issued,) = await db.outbox_events(ev.EventType.INVOICE_ISSUED)
    payload = ev.payload_of(issued, ev.InvoiceIssuedV1)
    assert payload.number == invoice.number and payload.ticket_numbers == [ticket.number]
    assert payload.total == Decimal("262.50") and payload.pdf_url.endswith(f"/invoices/{invoice.id}/pdf")

    # Settling again, and delivering the close again, charge nothing twice.
    assert await db.deliver(closed) == [Outcome.DUPLICATE]
    assert await db.settle(story.now + timedelta(minutes=5)) == 0
    assert len(await db.invoices()) == 1


async def test_reopened_and_closed_again_charges_only_new_time(db: Harness) -> None:
    story = Story()
    acme, created = story.organization("Acme", "hourly")
    ticket = story.ticket(acme)
    entry, logged = story.log(ticket, 60)
    await db.deliver(created, logged, story.close(ticket))
    await db.settle(story.tick(10))

    story.reopen(ticket)
    _, more = story.log(ticket, 20, "Follow-up call")
    correction = story.correct(entry, minutes=70, description="Work, longer than noted")
    await db.deliver(more, correction, story.close(ticket))
    await db.settle(story.tick(10))

    first, second = await db.invoices()
    assert [(line.minutes, line.amount) for line in await db.lines(first.id)] == [(60, Decimal("150.00"))]
    assert [(line.description, line.minutes) for line in await db.lines(second.id)] == [
        ("Work, longer than noted", 15),  # 70 → 75 billed, 60 already charged
        ("Follow-up call", 30),
    ]
    assert second.number.endswith("000002")


async def test_time_logged_on_a_closed_ticket_waits_for_its_next_close(db: Harness) -> None:
    story = Story()
    acme, created = story.organization("Acme", "hourly")
    ticket = story.ticket(acme)
    _, logged = story.log(ticket, 30)
    await db.deliver(created, logged, story.close(ticket))
    await db.settle(story.tick(10))
    _, late = story.log(ticket, 15, "Noted after closing")  # ticket_status: closed
    await db.deliver(late)
    assert await db.settle(story.tick(600)) == 0
    assert len(await db.invoices()) == 1
    story.reopen(ticket)
    await db.deliver(story.close(ticket))
    await db.settle(story.tick(10))
    _, second = await db.invoices()
    assert [line.minutes for line in await db.lines(second.id)] == [15]


async def test_minimum_per_ticket_and_a_deletion_credit(db: Harness) -> None:
    story = Story()
    acme, created = story.organization("Acme", "hourly")
    ticket = story.ticket(acme)
    entry, logged = story.log(ticket, 10, "Quick fix")
    await db.deliver(created, logged, story.close(ticket))
    await db.settle(story.tick(10))
    (invoice,) = await db.invoices()
    assert [(line.description, line.minutes) for line in await db.lines(invoice.id)] == [
        ("Quick fix", 15),
        ("Minimum charge per ticket", 15),
    ]
    assert invoice.total == Decimal("75.00")

    story.reopen(ticket)
    await db.deliver(story.delete(entry), story.close(ticket))
    await db.settle(story.tick(10))
    _, credit = await db.invoices()
    assert credit.total == Decimal("-75.00"), "deleting the only entry takes back entry and minimum"
    assert await db.charged(acme.id) == 0


async def test_agreement_draws_the_month_and_notices_once_at_80_and_100(db: Harness) -> None:
    story = Story()
    globex, created = story.organization("Globex", "agreement")  # 600 min a month by default
    await db.deliver(created)
    for minutes in (240, 240, 60, 75):  # 240, 480 (80 %), 540, 615 (100 %)
        ticket = story.ticket(globex)
        _, logged = story.log(ticket, minutes)
        await db.deliver(logged, story.close(ticket))
        await db.settle(story.tick(10))
    notices = [
        ev.payload_of(e, ev.AllowanceThresholdReachedV1)
        for e in await db.outbox_events(ev.EventType.ALLOWANCE_THRESHOLD_REACHED)
    ]
    assert [(n.threshold, n.used_minutes, n.allowance_minutes, n.period) for n in notices] == [
        (80, 480, 600, "2026-11"),
        (100, 615, 600, "2026-11"),
    ]
    assert await db.invoices() == [], "overage waits for the period close"
    assert await db.charged(globex.id, ChargeKind.ALLOWANCE) == 615


async def test_prepaid_block_draws_down_and_notices_low_and_exhausted_once(db: Harness) -> None:
    story = Story()
    initech, created = story.organization("Initech", "block")  # a 1200-minute block by default
    await db.deliver(created)
    for minutes in (600, 360, 120, 180):  # 600 left, 240 left (20 %: low), 120, 0 + 60 overage
        ticket = story.ticket(initech)
        _, logged = story.log(ticket, minutes)
        await db.deliver(logged, story.close(ticket))
        await db.settle(story.tick(10))
    low = await db.outbox_events(ev.EventType.BLOCK_LOW)
    exhausted = await db.outbox_events(ev.EventType.BLOCK_EXHAUSTED)
    assert [ev.payload_of(e, ev.BlockBalanceV1).remaining_minutes for e in low] == [240]
    assert [ev.payload_of(e, ev.BlockBalanceV1).remaining_minutes for e in exhausted] == [0]
    (overage,) = await db.invoices()
    assert [(line.minutes, line.amount) for line in await db.lines(overage.id)] == [(60, Decimal("150.00"))]
    assert "beyond prepaid hours" in (await db.lines(overage.id))[0].description
    assert await db.charged(initech.id, ChargeKind.BLOCK) == 1200
