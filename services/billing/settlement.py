"""Charging a ticket's close, by the plan in force on the day of the close: each changed time
entry charged *rounded now − already charged* (hourly on an invoice, an agreement's allowance,
prepaid blocks oldest first and overage beyond them), credits returned where the minutes went,
priced once per unit so corrections leave no cent behind. Computed first (:class:`Settlement`,
which the close preview shows as it is), then written with its invoice and notices. The
arithmetic of draws and rounding is ``charging.py``'s and ``money.py``'s."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, cast
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from services.billing import repository as repo
from services.billing import wording
from services.billing.accounts import allowance_in, visible_account
from services.billing.charging import (
    BlockBalance,
    EntryState,
    draw_from_blocks,
    return_charges,
    ticket_deltas,
)
from services.billing.errors import TicketNotFound
from services.billing.invoices import InvoiceDraft, LineDraft, issue_invoices
from services.billing.models import (
    BillingAccount,
    BillingPlan,
    ChargeKind,
    InvoiceKind,
    PlanKind,
    TicketState,
    TimeEntryState,
)
from services.billing.money import from_cents, invoice_totals, time_amount
from services.billing.notices import notify_allowances, notify_blocks
from services.billing.periods import Period, local_date, parse_period_key, period_of
from services.billing.schemas import ClosePreview, PreviewLine
from services.billing.settings import Settings
from shared.ids import new_id
from shared.principal import Principal
from shared.uow import UnitOfWork


@dataclass
class ChargeDraft:
    time_entry_id: UUID | None
    kind: ChargeKind
    minutes: int
    period_key: str | None = None
    block_id: UUID | None = None
    rate_per_hour_cents: int | None = None


PricingUnit = tuple[Any, ...]


def overage_unit(rate_cents: int) -> PricingUnit:
    return ("overage", rate_cents)


def entry_unit(time_entry_id: UUID | None, rate_cents: int) -> PricingUnit:
    return ("entry", time_entry_id, rate_cents)


@dataclass
class Settlement:
    """What charging one ticket's close does, computed before anything is written (the preview
    shows it as it is)."""

    ticket: TicketState
    account: BillingAccount
    plan: BillingPlan
    charged_at: datetime
    charges: list[ChargeDraft] = field(default_factory=list)
    lines: list[LineDraft] = field(default_factory=list)
    revisions: dict[UUID, int] = field(default_factory=dict)
    blocks: list[BlockBalance] = field(default_factory=list)
    purchased_minutes: int = 0
    newest_block_id: UUID | None = None
    # Minutes invoiced so far per pricing unit (from the charge ledger, then this close's lines).
    invoiced: dict[PricingUnit, int] = field(default_factory=dict)
    # This close's minutes beyond the prepaid blocks, by rate: summed, then priced once.
    overage: dict[int, int] = field(default_factory=dict)

    def price(self, unit: PricingUnit, minutes: int, rate_cents: int) -> Decimal:
        """What ``minutes`` more of ``unit`` cost: the unit's new total priced, less what was
        priced before. Each unit's invoiced amounts add up to its minutes priced once, so a
        correction never leaves a cent of rounding behind."""
        before = self.invoiced.get(unit, 0)
        self.invoiced[unit] = before + minutes
        rate = from_cents(rate_cents)
        return time_amount(before + minutes, rate) - time_amount(before, rate)


def agreement_period(account: BillingAccount, at: datetime) -> Period:
    """The period a draw at ``at`` counts in: its own, unless that one is already closed (a late
    close), then the first period still open."""
    period = period_of(at, account.timezone)
    if account.closed_through is not None and period.key <= account.closed_through:
        return parse_period_key(account.closed_through, account.timezone).next()
    return period


def _describe(entry: TimeEntryState | None, *, credit: bool) -> str:
    """An invoice line's words: the entry's, or the minimum charge's (``entry`` None)."""
    if entry is None:
        return wording.minimum_line(credit=credit)
    return wording.entry_line(entry.description, credit=credit)


async def compute_settlement(
    session: AsyncSession,
    ticket: TicketState,
    account: BillingAccount,
    *,
    at: datetime,
    changed_before: datetime | None = None,
    draw_period: Period | None = None,
) -> Settlement:
    """What charging ``ticket`` now would do, by the plan in force on the day of its close.

    The period close passes ``changed_before`` (its period's end: later changes wait for the
    next period) and ``draw_period`` (the period being closed)."""
    charged_at = ticket.closed_at or at
    plan = await repo.plan_in_force(
        session, account.organization_id, local_date(charged_at, account.timezone)
    )
    assert plan is not None, "every account has a plan from its creation"
    rows = await repo.entries_with_charges(session, [ticket.ticket_id])

    def changed(entry: TimeEntryState) -> bool:
        return entry.needs_charge and (changed_before is None or entry.changed_at < changed_before)

    states = [
        EntryState(entry.time_entry_id, entry.minutes, entry.billable, entry.deleted, charged, changed(entry))
        for entry, charged in rows
    ]
    minimum = (await repo.minimum_charged(session, [ticket.ticket_id])).get(ticket.ticket_id, 0)
    deltas = ticket_deltas(
        states,
        increment=plan.increment_minutes,
        minimum=plan.minimum_minutes_per_ticket,
        minimum_charged=minimum,
    )
    settlement = Settlement(ticket=ticket, account=account, plan=plan, charged_at=charged_at)
    for time_entry_id, kind, rate_cents, minutes in await repo.invoiced_minutes(session, ticket.ticket_id):
        overage = kind == ChargeKind.BLOCK_OVERAGE
        unit = overage_unit(rate_cents) if overage else entry_unit(time_entry_id, rate_cents)
        settlement.invoiced[unit] = settlement.invoiced.get(unit, 0) + int(minutes)
    settlement.revisions = {entry.time_entry_id: entry.revision for entry, _ in rows if changed(entry)}
    entries = {entry.time_entry_id: entry for entry, _ in rows}
    kind = PlanKind(plan.kind)
    if kind is PlanKind.BLOCK:
        await _load_blocks(session, settlement)
    for delta in deltas:
        entry = entries.get(delta.time_entry_id) if delta.time_entry_id else None
        if delta.minutes < 0:
            await _give_back(session, settlement, entry, delta.time_entry_id, -delta.minutes)
        elif kind is PlanKind.HOURLY:
            _charge_invoiced(
                settlement,
                entry,
                delta.time_entry_id,
                delta.minutes,
                ChargeKind.HOURLY,
                plan.rate_per_hour_cents,
            )
        elif kind is PlanKind.AGREEMENT:
            period = draw_period or agreement_period(account, charged_at)
            settlement.charges.append(
                ChargeDraft(delta.time_entry_id, ChargeKind.ALLOWANCE, delta.minutes, period.key)
            )
        else:
            draws, overage = draw_from_blocks(
                delta.minutes, [b for b in settlement.blocks if b.remaining > 0]
            )
            for block_id, minutes in draws:
                settlement.charges.append(
                    ChargeDraft(delta.time_entry_id, ChargeKind.BLOCK, minutes, block_id=block_id)
                )
                _use_block(settlement, block_id, minutes)
            if overage:
                _charge_invoiced(
                    settlement,
                    entry,
                    delta.time_entry_id,
                    overage,
                    ChargeKind.BLOCK_OVERAGE,
                    plan.overage_rate_per_hour_cents,
                )
    _overage_lines(settlement)
    return settlement


def _overage_lines(settlement: Settlement) -> None:
    """One line per rate for the close's minutes beyond the prepaid blocks, priced once."""
    for rate_cents, minutes in sorted(settlement.overage.items()):
        if minutes:
            settlement.lines.append(
                LineDraft(
                    description=wording.beyond_prepaid_line(credit=minutes < 0),
                    ticket_number=settlement.ticket.number,
                    time_entry_id=None,
                    work_date=None,
                    minutes=minutes,
                    rate_per_hour_cents=rate_cents,
                    amount=settlement.price(overage_unit(rate_cents), minutes, rate_cents),
                )
            )


def _charge_invoiced(
    settlement: Settlement,
    entry: TimeEntryState | None,
    time_entry_id: UUID | None,
    minutes: int,
    kind: ChargeKind,
    rate_cents: int,
) -> None:
    settlement.charges.append(ChargeDraft(time_entry_id, kind, minutes, rate_per_hour_cents=rate_cents))
    if kind is ChargeKind.BLOCK_OVERAGE:
        settlement.overage[rate_cents] = settlement.overage.get(rate_cents, 0) + minutes
        return
    settlement.lines.append(
        LineDraft(
            description=_describe(entry, credit=minutes < 0),
            ticket_number=settlement.ticket.number,
            time_entry_id=time_entry_id,
            work_date=local_date(entry.started_at, settlement.account.timezone) if entry else None,
            minutes=minutes,
            rate_per_hour_cents=rate_cents,
            amount=settlement.price(entry_unit(time_entry_id, rate_cents), minutes, rate_cents),
        )
    )


async def _load_blocks(session: AsyncSession, settlement: Settlement) -> None:
    usable = [
        (block, used)
        for block, used in await repo.blocks_with_use(session, settlement.account.organization_id)
        if block.purchased_at <= settlement.charged_at
        and (block.expires_at is None or block.expires_at > settlement.charged_at)
    ]
    settlement.blocks = [BlockBalance(block.id, block.minutes - used) for block, used in usable]
    settlement.purchased_minutes = sum(block.minutes for block, _ in usable)
    settlement.newest_block_id = usable[-1][0].id if usable else None


def _use_block(settlement: Settlement, block_id: UUID, minutes: int) -> None:
    settlement.blocks = [
        BlockBalance(b.block_id, b.remaining - minutes) if b.block_id == block_id else b
        for b in settlement.blocks
    ]


async def _give_back(
    session: AsyncSession,
    settlement: Settlement,
    entry: TimeEntryState | None,
    time_entry_id: UUID | None,
    minutes: int,
) -> None:
    """Credit ``minutes`` where the entry's charges went, most recent first, each at the rate it
    was charged at, so a reversal mirrors its charge to the cent."""
    previous = await repo.entry_charges(session, time_entry_id, settlement.ticket.ticket_id)
    charged_so_far = [
        ((charge.kind, charge.block_id, charge.period_key, charge.rate_per_hour_cents), charge.minutes)
        for charge in previous
    ]
    charged_so_far += [
        ((d.kind, d.block_id, d.period_key, d.rate_per_hour_cents), d.minutes)
        for d in settlement.charges
        if d.time_entry_id == time_entry_id
    ]
    for target, returned in return_charges(minutes, charged_so_far):
        kind_value, block_id, period_key, rate_cents = cast(tuple[str, Any, Any, Any], target)
        kind = ChargeKind(kind_value)
        if kind in (ChargeKind.HOURLY, ChargeKind.BLOCK_OVERAGE):
            _charge_invoiced(settlement, entry, time_entry_id, returned, kind, rate_cents)
        elif kind is ChargeKind.ALLOWANCE:
            closed = settlement.account.closed_through
            if closed is not None and period_key <= closed:
                period_key = agreement_period(settlement.account, settlement.charged_at).key
            settlement.charges.append(ChargeDraft(time_entry_id, kind, returned, period_key))
        else:
            settlement.charges.append(ChargeDraft(time_entry_id, kind, returned, block_id=block_id))
            _use_block(settlement, block_id, returned)


async def settle_ticket(uow: UnitOfWork, settings: Settings, ticket_id: UUID, *, now: datetime) -> bool:
    """Charge a ticket's close (once: the mark is cleared in the same transaction). The account
    row is locked first, so closes of one organization queue up and never lose an update."""
    session = uow.session
    ticket = await repo.get_ticket(session, ticket_id)
    if ticket is None or ticket.settle_due_at is None:
        return False
    if ticket.organization_id is None:
        await repo.clear_settle_due(session, ticket_id)
        return False
    account = await repo.get_account(session, ticket.organization_id, for_update=True)
    ticket = await repo.get_ticket(session, ticket_id)  # re-read under the lock
    if ticket is None or ticket.settle_due_at is None:
        return False
    if account is None:
        return False  # the organization's events have not arrived yet: try again later
    closed_at = ticket.closed_at or now
    # Time logged after the close waits for the next one, however late billing runs this.
    settlement = await compute_settlement(
        session, ticket, account, at=now, changed_before=closed_at + timedelta(microseconds=1)
    )
    await apply_settlement(uow, settings, settlement)
    return True


async def apply_settlement(uow: UnitOfWork, settings: Settings, settlement: Settlement) -> None:
    """Write what a close charges, as of the close's instant: its invoice (only when there is
    an amount to pay or credit: lines that cancel out get no number), charges and notices."""
    session = uow.session
    invoice_id: UUID | None = None
    if sum((line.amount for line in settlement.lines), Decimal(0)) != 0:
        (invoice_id,) = await issue_invoices(
            uow,
            settings,
            [
                InvoiceDraft(
                    account=settlement.account,
                    plan=settlement.plan,
                    kind=InvoiceKind.TICKET,
                    lines=settlement.lines,
                    ticket_id=settlement.ticket.ticket_id,
                    ticket_number=settlement.ticket.number,
                    contact_email=settlement.ticket.contact_email,
                    dated_at=settlement.charged_at,
                )
            ],
        )
    await repo.insert_charges(
        session,
        [
            {
                "id": new_id(),
                "organization_id": settlement.account.organization_id,
                "ticket_id": settlement.ticket.ticket_id,
                "ticket_number": settlement.ticket.number,
                "time_entry_id": draft.time_entry_id,
                "kind": draft.kind.value,
                "minutes": draft.minutes,
                "period_key": draft.period_key,
                "block_id": draft.block_id,
                "invoice_id": invoice_id if draft.rate_per_hour_cents is not None else None,
                "rate_per_hour_cents": draft.rate_per_hour_cents,
                "charged_at": settlement.charged_at,
            }
            for draft in settlement.charges
        ],
    )
    await repo.mark_entries_charged(session, settlement.revisions)
    await repo.clear_settle_due(session, settlement.ticket.ticket_id)
    periods = sorted(
        {d.period_key for d in settlement.charges if d.kind is ChargeKind.ALLOWANCE and d.period_key}
    )
    await notify_allowances(
        uow,
        [(settlement.account, settlement.plan, key, settlement.charged_at) for key in periods],
    )
    if PlanKind(settlement.plan.kind) is PlanKind.BLOCK and any(d.minutes > 0 for d in settlement.charges):
        await notify_blocks(uow, settlement)


def _charged_to(draft: ChargeDraft) -> str:
    if draft.kind is ChargeKind.ALLOWANCE:
        return wording.charged_to_allowance(draft.period_key)
    return wording.charged_to_block(draft.block_id)


async def preview_close(
    session: AsyncSession, principal: Principal, ticket_id: UUID, *, now: datetime
) -> ClosePreview:
    """What closing the ticket now would charge (nothing is written)."""
    ticket = await repo.get_ticket(session, ticket_id)
    if (
        ticket is None
        or ticket.organization_id is None
        or not principal.can_see_organization(ticket.organization_id)
    ):
        raise TicketNotFound(f"Billing knows no ticket {ticket_id}.")
    account = await visible_account(session, principal, ticket.organization_id)
    preview_ticket = TicketState(
        ticket_id=ticket.ticket_id,
        organization_id=ticket.organization_id,
        number=ticket.number,
        status=ticket.status,
        status_at=ticket.status_at,
        closed_at=ticket.closed_at if ticket.settle_due_at is not None else now,
        contact_email=ticket.contact_email,
    )
    session.expunge(ticket)
    settlement = await compute_settlement(session, preview_ticket, account, at=now)
    entries = {
        entry.time_entry_id: entry for entry, _ in await repo.entries_with_charges(session, [ticket_id])
    }
    preview_lines = [
        PreviewLine(
            time_entry_id=draft.time_entry_id,
            description=_describe(
                entries.get(draft.time_entry_id) if draft.time_entry_id else None, credit=draft.minutes < 0
            ),
            minutes=draft.minutes,
            charged_to=_charged_to(draft),
            amount=None,
        )
        for draft in settlement.charges
        if draft.rate_per_hour_cents is None
    ] + [
        PreviewLine(
            time_entry_id=line.time_entry_id,
            description=line.description,
            minutes=line.minutes,
            charged_to=wording.CHARGED_TO_INVOICE,
            amount=line.amount,
        )
        for line in settlement.lines
    ]
    totals = invoice_totals([line.amount for line in settlement.lines], settlement.plan.tax_rate)
    kind = PlanKind(settlement.plan.kind)
    allowance = None
    if kind is PlanKind.AGREEMENT:
        allowance = await allowance_in(
            session, account, settlement.plan, agreement_period(account, settlement.charged_at)
        )
    return ClosePreview(
        ticket_id=ticket_id,
        ticket_number=ticket.number,
        plan_kind=kind,
        currency=settlement.plan.currency,
        lines=preview_lines,
        subtotal=totals.subtotal,
        tax=totals.tax,
        total=totals.total,
        allowance=allowance,
        prepaid_remaining_minutes=sum(max(b.remaining, 0) for b in settlement.blocks)
        if kind is PlanKind.BLOCK
        else None,
    )
