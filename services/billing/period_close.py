"""The monthly period close: agreement overage invoiced once per (account, period).

Runs as an arq cron job (``unique=True``: one worker at a time), and is safe even if two runs
overlap or one dies midway:

* accounts are closed in batches, one transaction each; a batch locks its accounts (``FOR
  UPDATE SKIP LOCKED`` on PostgreSQL, so a concurrent run takes other accounts) and moves their
  ``closed_through`` mark in the same transaction as the invoices, so a batch happens wholly
  or not at all;
* a unique constraint on (organization, period) makes a second overage invoice impossible.

Every complete period an account has not closed is closed, oldest first (a pass closes each
account's oldest one; passes repeat until none is left), so an outage over several month ends
leaves no month unclosed. Everything is dated by the period, never by when the close runs:
overage invoices by the period's end, draws by its last instant.

Per batch, in set-based queries: charge closes still waiting whose ticket closed before the
period's end, draw time logged on closed tickets since their last charge into the period,
sum each account's allowance use from the charge ledger, and issue the overage invoices
with consecutive numbers from one counter update.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from services.billing import repository as repo
from services.billing import wording
from services.billing.accounts import plan_at
from services.billing.charging import EntryState, ticket_deltas
from services.billing.context import Billing
from services.billing.invoices import InvoiceDraft, LineDraft, issue_invoices
from services.billing.models import BillingAccount, BillingPlan, ChargeKind, InvoiceKind, PlanKind
from services.billing.money import time_amount
from services.billing.notices import notify_allowances
from services.billing.periods import Period, local_date, parse_period_key, period_of
from services.billing.settings import Settings
from services.billing.settlement import apply_settlement, compute_settlement
from shared.db import SessionMaker
from shared.ids import new_id
from shared.uow import UnitOfWork
from shared.vocabulary import TicketStatus

log = logging.getLogger(__name__)

TICKETS_PER_QUERY = 1000


@dataclass
class PeriodCloseReport:
    accounts_closed: int = 0
    overage_invoices: int = 0
    closes_charged: int = 0
    entries_swept: int = 0
    batches: int = 0
    finished: bool = True


@dataclass
class Closing:
    account: BillingAccount
    plans: list[BillingPlan]
    period: Period

    @property
    def plan(self) -> BillingPlan:
        """An agreement's period is measured against the plan in force on its last day."""
        return plan_at(self.plans, self.period.last_day)

    @property
    def last_instant(self) -> datetime:
        """What the close draws into the period is charged as of the period's last instant."""
        return self.period.ends_at - timedelta(microseconds=1)


def first_open_period(closed_through: str | None, opened_at: datetime, timezone: str) -> Period:
    """The oldest period an account has not closed: the one after its last closed, else the
    one it was opened in."""
    if closed_through is not None:
        return parse_period_key(closed_through, timezone).next()
    return period_of(opened_at, timezone)


def due_accounts(marks: list[Any], as_of: datetime) -> list[tuple[UUID, Period]]:
    """Each account's oldest period that is complete at ``as_of`` (in its timezone) and not
    closed; oldest periods first."""
    ends: dict[Period, datetime] = {}
    due = []
    for organization_id, timezone, closed_through, opened_at in marks:
        period = first_open_period(closed_through, opened_at, timezone)
        end = ends.get(period)
        if end is None:
            end = ends[period] = period.ends_at
        if end <= as_of:
            due.append((organization_id, period))
    due.sort(key=lambda item: (item[1].key, item[0]))
    return due


async def close_periods(
    sessions: SessionMaker,
    billing: Billing,
    *,
    now: datetime,
    as_of: datetime | None = None,
    organization_id: UUID | None = None,
    time_budget_seconds: float | None = None,
) -> PeriodCloseReport:
    """Close every complete period (as of ``as_of``, by default ``now``) that is not closed yet,
    oldest first, of every account or of one. With a time budget, stop after the batch that
    exceeds it (the next run goes on where this one stopped)."""
    started = time.monotonic()
    report = PeriodCloseReport()
    instant = as_of or now
    while True:
        async with sessions() as session:
            due = due_accounts(await repo.account_close_marks(session, organization_id), instant)
        closed_before = report.accounts_closed
        for batch in repo.chunks(due, billing.settings.period_close_batch_size):
            if time_budget_seconds is not None and time.monotonic() - started > time_budget_seconds:
                report.finished = False
                log.info("period close: %s", report)
                return report
            async with sessions() as session:
                uow = billing.unit_of_work(session)
                await _close_batch(uow, billing.settings, dict(batch), now=now, report=report)
                await uow.commit()
            report.batches += 1
        # Nothing due, or every due account was taken by a concurrent run: done here.
        if not due or report.accounts_closed == closed_before:
            break
    log.info("period close: %s", report)
    return report


async def _close_batch(
    uow: UnitOfWork,
    settings: Settings,
    due: dict[UUID, Period],
    *,
    now: datetime,
    report: PeriodCloseReport,
) -> None:
    session = uow.session
    accounts = [
        account
        for account in await repo.lock_accounts(session, list(due))
        # Still the period to close (a concurrent run may have closed it meanwhile).
        if first_open_period(
            account.closed_through, account.opened_at or account.created_at, account.timezone
        )
        == due[account.organization_id]
    ]
    if not accounts:
        return
    plans: dict[UUID, list[BillingPlan]] = defaultdict(list)
    for plan in await repo.plans_of(session, [a.organization_id for a in accounts]):
        plans[plan.organization_id].append(plan)
    closings = {
        account.organization_id: Closing(
            account, plans[account.organization_id], due[account.organization_id]
        )
        for account in accounts
        if plans[account.organization_id]
    }
    agreements = {
        organization_id: closing
        for organization_id, closing in closings.items()
        if PlanKind(closing.plan.kind) is PlanKind.AGREEMENT
    }
    if agreements:
        await _charge_time_of_the_period(uow, settings, agreements, now=now, report=report)
        await _invoice_overage(uow, settings, agreements, now=now, report=report)
    by_period: dict[str, list[UUID]] = defaultdict(list)
    for account in accounts:
        by_period[due[account.organization_id].key].append(account.organization_id)
    for period_key, organization_ids in by_period.items():
        await repo.mark_closed_through(session, organization_ids, period_key)
    report.accounts_closed += len(accounts)


async def _charge_time_of_the_period(
    uow: UnitOfWork,
    settings: Settings,
    agreements: dict[UUID, Closing],
    *,
    now: datetime,
    report: PeriodCloseReport,
) -> None:
    """Before the period's use is summed, charge what belongs to it and is not charged yet,
    drawn from its allowance: closes inside the period still waiting for their settle delay,
    and time logged (or corrected) on already closed tickets. Set-based per chunk of tickets;
    a ticket needing more than plain draws (a credit, a close under another plan) takes the
    general path, one ticket at a time."""
    session = uow.session
    organization_ids = list(agreements)
    waiting_closes = {
        ticket_id: closed_at
        for ticket_id, organization_id, closed_at in await repo.unsettled_closes_of(session, organization_ids)
        if closed_at is not None and closed_at < agreements[organization_id].period.ends_at
    }
    waiting = set(waiting_closes)
    pending = await repo.pending_entries_on_closed_tickets(session, organization_ids)
    ticket_ids = sorted(
        waiting
        | {
            ticket_id
            for ticket_id, organization_id, changed_at in pending
            if changed_at < agreements[organization_id].period.ends_at
        }
    )
    touched: set[UUID] = set()
    settled = set(waiting)
    for chunk in repo.chunks(ticket_ids, TICKETS_PER_QUERY):
        tickets = {row.ticket_id: row for row in await repo.tickets_by_id(session, chunk)}
        plans_at_close = {
            ticket_id: plan_at(
                agreements[ticket.organization_id].plans,
                local_date(ticket.closed_at or now, agreements[ticket.organization_id].account.timezone),
            )
            for ticket_id, ticket in tickets.items()
            if ticket.organization_id in agreements
        }
        # Without a minimum per ticket, what an entry is charged depends on that entry alone:
        # read only the entries changed since charged (a tenth of them, typically).
        whole = {ticket_id for ticket_id, plan in plans_at_close.items() if plan.minimum_minutes_per_ticket}
        entries: dict[UUID, list[Any]] = defaultdict(list)
        for row in await repo.entry_rows_with_charges(session, chunk, pending_only=True):
            if row.ticket_id not in whole:
                entries[row.ticket_id].append(row)
        if whole:
            for row in await repo.entry_rows_with_charges(session, sorted(whole)):
                entries[row.ticket_id].append(row)
        minimums = await repo.minimum_charged(session, chunk)
        charges: list[dict[str, Any]] = []
        revisions: dict[UUID, int] = {}
        for ticket_id in chunk:
            ticket = tickets[ticket_id]
            closing = agreements.get(ticket.organization_id)
            if closing is None:
                continue
            end = closing.period.ends_at
            if ticket_id in waiting_closes and ticket.status != TicketStatus.CLOSED:
                # Reopened since: what was logged after the close waits for the next close.
                end = min(end, waiting_closes[ticket_id] + timedelta(microseconds=1))
            plan = plans_at_close[ticket_id]
            changed = {
                row.time_entry_id for row in entries[ticket_id] if row.needs_charge and row.changed_at < end
            }
            states = [
                EntryState(
                    row.time_entry_id,
                    row.minutes,
                    row.billable,
                    row.deleted,
                    row.charged,
                    row.time_entry_id in changed,
                )
                for row in entries[ticket_id]
            ]
            deltas = ticket_deltas(
                states,
                increment=plan.increment_minutes,
                minimum=plan.minimum_minutes_per_ticket,
                minimum_charged=minimums.get(ticket_id, 0),
            )
            if PlanKind(plan.kind) is not PlanKind.AGREEMENT or any(delta.minutes < 0 for delta in deltas):
                await _general_path(uow, settings, closing, ticket_id, now=now)
                touched.add(closing.account.organization_id)
                settled.discard(ticket_id)  # the general path cleared its close mark itself
                continue
            for delta in deltas:
                charges.append(
                    {
                        "id": new_id(),
                        "organization_id": closing.account.organization_id,
                        "ticket_id": ticket_id,
                        "ticket_number": ticket.number,
                        "time_entry_id": delta.time_entry_id,
                        "kind": ChargeKind.ALLOWANCE.value,
                        "minutes": delta.minutes,
                        "period_key": closing.period.key,
                        "block_id": None,
                        "invoice_id": None,
                        "rate_per_hour_cents": None,
                        "charged_at": closing.last_instant,
                    }
                )
                touched.add(closing.account.organization_id)
            revisions.update(
                {
                    row.time_entry_id: row.revision
                    for row in entries[ticket_id]
                    if row.time_entry_id in changed
                }
            )
        await repo.insert_charges(session, charges)
        await repo.mark_entries_charged(session, revisions)
        report.entries_swept += len(revisions)
    await repo.clear_settle_due_many(session, sorted(settled))
    report.closes_charged += len(waiting)
    await notify_allowances(
        uow,
        [
            (agreements[o].account, agreements[o].plan, agreements[o].period.key, agreements[o].last_instant)
            for o in sorted(touched)
        ],
    )


async def _general_path(
    uow: UnitOfWork, settings: Settings, closing: Closing, ticket_id: UUID, *, now: datetime
) -> None:
    ticket = await repo.get_ticket(uow.session, ticket_id)
    assert ticket is not None
    settlement = await compute_settlement(
        uow.session,
        ticket,
        closing.account,
        at=now,
        changed_before=closing.period.ends_at,
        draw_period=closing.period,
    )
    await apply_settlement(uow, settings, settlement)


async def _invoice_overage(
    uow: UnitOfWork,
    settings: Settings,
    agreements: dict[UUID, Closing],
    *,
    now: datetime,
    report: PeriodCloseReport,
) -> None:
    by_period: dict[str, list[UUID]] = defaultdict(list)
    for organization_id, closing in agreements.items():
        by_period[closing.period.key].append(organization_id)
    drafts: list[InvoiceDraft] = []
    for period_key, organization_ids in sorted(by_period.items()):
        used = await repo.allowance_used(uow.session, organization_ids, period_key)
        for organization_id in sorted(organization_ids):
            closing = agreements[organization_id]
            plan = closing.plan
            overage = used.get(organization_id, 0) - plan.allowance_minutes
            if overage <= 0:
                continue
            drafts.append(
                InvoiceDraft(
                    account=closing.account,
                    plan=plan,
                    kind=InvoiceKind.PERIOD_OVERAGE,
                    period_key=period_key,
                    lines=[
                        LineDraft(
                            description=wording.period_overage_line(
                                allowance_minutes=plan.allowance_minutes,
                                period=period_key,
                                used_minutes=used[organization_id],
                            ),
                            ticket_number=None,
                            time_entry_id=None,
                            work_date=None,
                            minutes=overage,
                            rate_per_hour_cents=plan.overage_rate_per_hour_cents,
                            amount=time_amount(overage, plan.overage_rate_per_hour),
                        )
                    ],
                    dated_at=closing.period.ends_at,
                )
            )
    await issue_invoices(uow, settings, drafts)
    report.overage_invoices += len(drafts)
