"""Property: whatever happens to time entries and tickets, in whatever order events arrive,
the balances billing shows agree with its ledgers, the ledgers with the final state, and the
invoices add up to the ledger priced once (no rounding cent left behind by corrections)."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import date
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from services.billing.accounts import account_public, add_plan
from services.billing.models import (
    BillingPlan,
    Charge,
    ChargeKind,
    Invoice,
    InvoiceLine,
    PlanKind,
    UsageEntry,
)
from services.billing.money import time_amount
from services.billing.periods import period_of
from services.billing.rounding import round_up
from services.billing.schemas import PlanCreate
from shared import events as ev
from tests.auth import admin
from tests.billing.harness import Entry, Harness, Story

operation = st.one_of(
    st.tuples(st.just("log"), st.integers(0, 2), st.integers(1, 240), st.booleans()),
    st.tuples(st.just("correct"), st.integers(0, 20), st.integers(1, 240), st.booleans()),
    st.tuples(st.just("delete"), st.integers(0, 20)),
    st.tuples(st.just("close"), st.integers(0, 2)),
    st.tuples(
        st.just("settle"),
    ),
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    tier=st.sampled_from(["hourly", "agreement", "block"]),
    operations=st.lists(operation, min_size=1, max_size=25),
    seed=st.integers(0, 2**16),
    increment=st.sampled_from([1, 7, 15]),
    rate=st.sampled_from(["100.00", "150.00", "99.99"]),
    corrections=st.lists(st.integers(1, 240), max_size=6),
    first=st.lists(st.tuples(st.integers(0, 2), st.integers(1, 480)), min_size=1, max_size=6),
)
async def test_ledger_sums_equal_balances(
    pg: Harness,
    tier: str,
    operations: list[tuple[Any, ...]],
    seed: int,
    increment: int,
    rate: str,
    corrections: list[int],
    first: list[tuple[int, int]],
) -> None:
    story = Story()
    organization, created = story.organization(f"Org{seed}", tier)
    await pg.deliver(created)
    # Rates and increments where rounding to the cent matters (1 minute at 100.00/h is 1.666…).
    async with pg.sessions() as session, session.begin():
        plan_change = PlanCreate(
            kind=PlanKind(tier),
            effective_from=date(2000, 1, 1),
            increment_minutes=increment,
            rate_per_hour=Decimal(rate),
            overage_rate_per_hour=Decimal(rate),
        )
        await add_plan(
            session, pg.billing.settings, admin(), await _account(session, organization.id), plan_change
        )
    tickets = [story.ticket(organization) for _ in range(3)]
    entries: list[Entry] = []
    pending: list[ev.Event] = [created]
    rng = random.Random(seed)
    for ticket_index, minutes in first:  # some work to start with (up to 48 h: past a block)
        entry, event = story.log(tickets[ticket_index], minutes)
        entries.append(entry)
        pending.append(event)

    async def flush() -> None:
        batch = pending * 2  # every event twice, in any order within the batch
        rng.shuffle(batch)
        await pg.deliver(*batch)
        pending.clear()

    for op in operations:
        if op[0] == "log":
            entry, event = story.log(tickets[op[1]], op[2], billable=op[3])
            entries.append(entry)
            pending.append(event)
        elif op[0] == "correct" and entries and not entries[op[1] % len(entries)].deleted:
            pending.append(story.correct(entries[op[1] % len(entries)], minutes=op[2], billable=op[3]))
        elif op[0] == "delete" and entries and not entries[op[1] % len(entries)].deleted:
            pending.append(story.delete(entries[op[1] % len(entries)]))
        elif op[0] == "close":
            ticket = tickets[op[1]]
            if ticket.status == "closed":
                pending.append(story.reopen(ticket))
            pending.append(story.close(ticket))
        elif op[0] == "settle":
            await flush()
            await pg.settle(story.tick(10))

    async def close_all() -> None:
        for ticket in tickets:
            if ticket.status == "closed":
                pending.append(story.reopen(ticket))
            pending.append(story.close(ticket))
        await flush()
        await pg.settle(story.tick(10))

    # Every ticket is closed and charged; then entries already charged are corrected (so their
    # invoices carry corrections), and finally every ticket is closed once more and charged.
    await close_all()
    live = [entry for entry in entries if not entry.deleted]
    for index, minutes in enumerate(corrections):
        if live:
            pending.append(story.correct(live[index % len(live)], minutes=minutes))
    await close_all()

    org = organization.id
    async with pg.sessions() as session:
        # Usage ledger: each entry's rows add up to its final state.
        usage = defaultdict(int)
        billable_usage = defaultdict(int)
        for entry_id, billable, minutes in (
            await session.execute(
                select(UsageEntry.time_entry_id, UsageEntry.billable, func.sum(UsageEntry.minutes))
                .where(UsageEntry.organization_id == org)
                .group_by(UsageEntry.time_entry_id, UsageEntry.billable)
            )
        ).all():
            usage[entry_id] += minutes
            billable_usage[entry_id] += minutes if billable else 0
        plan = (
            await session.scalars(
                select(BillingPlan)
                .where(BillingPlan.organization_id == org)
                .order_by(BillingPlan.version.desc())
            )
        ).first()
        assert plan is not None and plan.increment_minutes == increment
        charges = (await session.scalars(select(Charge).where(Charge.organization_id == org))).all()
        charged_by_entry = defaultdict(int)
        for charge in charges:
            charged_by_entry[charge.time_entry_id] += charge.minutes
        for entry in entries:
            final = 0 if entry.deleted else entry.minutes
            final_billable = final if entry.billable else 0
            assert usage[entry.id] == final
            assert billable_usage[entry.id] == final_billable
            # Charge ledger: every entry charged exactly its rounded final time, once.
            assert charged_by_entry[entry.id] == round_up(final_billable, plan.increment_minutes)

        # Balances the API shows are sums of the ledgers.
        account = await account_public(session, await _account(session, org), now=story.now)
        if tier == "agreement":
            period = period_of(story.now, organization.timezone).key
            drawn = sum(
                c.minutes for c in charges if c.kind == ChargeKind.ALLOWANCE and c.period_key == period
            )
            assert account.allowance is not None and account.allowance.used_minutes == drawn
        if tier == "block":
            drawn = sum(c.minutes for c in charges if c.kind == ChargeKind.BLOCK)
            assert account.prepaid_remaining_minutes == 1200 - drawn >= 0
            overage = sum(c.minutes for c in charges if c.kind == ChargeKind.BLOCK_OVERAGE)
            # (A correction gives block minutes back while earlier overage stays invoiced.)
            credited = any(c.minutes < 0 for c in charges)
            assert overage == 0 or credited or account.prepaid_remaining_minutes == 0, (
                "overage only once the block is empty"
            )

        # Invoices: their amounts add up to the ledger priced once, each pricing unit (an
        # entry's minutes, a ticket's minimum, a ticket's minutes beyond the blocks) at its rate.
        invoices = (await session.scalars(select(Invoice).where(Invoice.organization_id == org))).all()
        lines = (
            await session.scalars(
                select(InvoiceLine).where(InvoiceLine.invoice_id.in_([i.id for i in invoices]))
            )
        ).all()
        units: dict[tuple[Any, ...], int] = defaultdict(int)
        for charge in charges:
            if charge.rate_per_hour_cents is None:
                continue
            entry = None if charge.kind == ChargeKind.BLOCK_OVERAGE else charge.time_entry_id
            units[(charge.ticket_id, entry, charge.rate_per_hour_cents)] += charge.minutes
        priced_once = sum(
            (time_amount(minutes, Decimal(rate).scaleb(-2)) for (_, _, rate), minutes in units.items()),
            Decimal(0),
        )
        invoiced = sum((invoice.subtotal for invoice in invoices), Decimal(0))
        assert invoiced == priced_once
        if tier == "hourly":
            # ... which is the final state priced once: each entry rounded, each ticket's minimum.
            rate = plan.rate_per_hour
            expected = Decimal(0)
            for ticket in tickets:
                rounded = [
                    round_up(0 if e.deleted or not e.billable else e.minutes, plan.increment_minutes)
                    for e in entries
                    if e.ticket is ticket
                ]
                minimum = max(plan.minimum_minutes_per_ticket - sum(rounded), 0) if sum(rounded) else 0
                expected += sum((time_amount(m, rate) for m in rounded), Decimal(0)) + time_amount(
                    minimum, rate
                )
            assert invoiced == expected
        for invoice in invoices:
            mine = [line for line in lines if line.invoice_id == invoice.id]
            assert invoice.subtotal == sum((line.amount for line in mine), Decimal(0)) != 0, "no 0.00 invoice"
            assert invoice.total == invoice.subtotal + invoice.tax


async def _account(session: Any, organization_id: Any) -> Any:
    from services.billing.repository import get_account

    return await get_account(session, organization_id)
