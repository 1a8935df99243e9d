"""Property: whatever happens to time entries and tickets, in whatever order events arrive,
the balances billing shows agree with its ledgers, and the ledgers with the final state."""

from __future__ import annotations

import random
from collections import defaultdict
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from services.billing.models import BillingPlan, Charge, ChargeKind, Invoice, InvoiceLine, UsageEntry
from services.billing.money import time_amount
from services.billing.periods import period_of
from services.billing.rounding import round_up
from services.billing.service import account_public
from shared import events as ev
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
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    tier=st.sampled_from(["hourly", "agreement", "block"]),
    operations=st.lists(operation, min_size=1, max_size=25),
    seed=st.integers(0, 2**16),
)
async def test_ledger_sums_equal_balances(
    pg: Harness, tier: str, operations: list[tuple[Any, ...]], seed: int
) -> None:
    story = Story()
    organization, created = story.organization(f"Org{seed}", tier)
    tickets = [story.ticket(organization) for _ in range(3)]
    entries: list[Entry] = []
    pending: list[ev.Event] = [created]
    rng = random.Random(seed)

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
                story.reopen(ticket)
            pending.append(story.close(ticket))
        elif op[0] == "settle":
            await flush()
            await pg.settle(story.tick(10))
    # Finally every ticket is closed once more and every close charged.
    for ticket in tickets:
        story.reopen(ticket)
        pending.append(story.close(ticket))
    await flush()
    await pg.settle(story.tick(10))

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
        plan = (await session.scalars(select(BillingPlan).where(BillingPlan.organization_id == org))).one()
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
            assert overage == 0 or account.prepaid_remaining_minutes == 0, (
                "overage only once the block is empty"
            )

        # Invoices: lines are the invoiced charges at their rates; totals are the sums of lines.
        invoiced = [c for c in charges if c.invoice_id is not None]
        invoices = (await session.scalars(select(Invoice).where(Invoice.organization_id == org))).all()
        lines = (
            await session.scalars(
                select(InvoiceLine).where(InvoiceLine.invoice_id.in_([i.id for i in invoices]))
            )
        ).all()
        assert sum(line.minutes for line in lines) == sum(c.minutes for c in invoiced)
        assert sum((line.amount for line in lines), Decimal(0)) == sum(
            (time_amount(c.minutes, Decimal(c.rate_per_hour_cents).scaleb(-2)) for c in invoiced), Decimal(0)
        )
        for invoice in invoices:
            mine = [line for line in lines if line.invoice_id == invoice.id]
            assert invoice.subtotal == sum((line.amount for line in mine), Decimal(0))
            assert invoice.total == invoice.subtotal + invoice.tax


async def _account(session: Any, organization_id: Any) -> Any:
    from services.billing.repository import get_account

    return await get_account(session, organization_id)
