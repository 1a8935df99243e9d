"""billing's rules: projections from events, charging a ticket's close, invoices, notices.

Handlers and routes pass the session; these functions only flush. Events go to the outbox in
the same transaction through ``Billing.record``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, cast
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from services.billing import repository as repo
from services.billing.charging import (
    BlockBalance,
    EntryState,
    block_notices,
    draw_from_blocks,
    return_charges,
    thresholds_reached,
    ticket_deltas,
)
from services.billing.errors import (
    AccountNotFound,
    InvalidPeriod,
    InvalidPlan,
    InvoiceNotFound,
    InvoiceStateConflict,
    TicketNotFound,
)
from services.billing.models import (
    AccountPublic,
    AllowancePublic,
    BillingAccount,
    BillingPlan,
    BlockCreate,
    BlockPublic,
    ChargeKind,
    ClosePreview,
    Invoice,
    InvoiceKind,
    InvoiceLine,
    InvoiceLinePublic,
    InvoicePublic,
    InvoiceStatus,
    Notice,
    NoticeKind,
    NoticePublic,
    PlanCreate,
    PlanKind,
    PlanPublic,
    PrepaidBlock,
    PreviewLine,
    TicketState,
    TimeEntryState,
    UsageKind,
    UsageSummary,
    UsageTicketPublic,
    cents,
    from_cents,
    outbox,
    ppm,
    utcnow,
)
from services.billing.money import invoice_totals, time_amount
from services.billing.periods import Period, local_date, parse_period_key, period_of
from services.billing.settings import Settings
from shared import events as ev
from shared.auth import require_admin
from shared.ids import new_id
from shared.outbox import Outbox
from shared.principal import Principal
from shared.uow import UnitOfWork

log = logging.getLogger(__name__)

PRODUCER = ev.Service.BILLING
API = "/api/v1/billing"
# The first plan of an account applies from the start of time: events may arrive in any order.
FIRST_PLAN_DATE = date(2000, 1, 1)
# ... and so does its initial prepaid block (a block otherwise covers from its purchase instant).
ACCOUNT_START = datetime(2000, 1, 1, tzinfo=UTC)


def event_recorder() -> Outbox:
    """An outbox used only to *record* events in a caller's transaction (the worker's or API's
    runtime publishes them after commit)."""
    return Outbox(outbox, PRODUCER)


@dataclass(frozen=True)
class Billing:
    """What billing's rules need besides the session: settings and a way to record events."""

    settings: Settings
    recorder: Outbox = field(default_factory=event_recorder)

    async def record(
        self, session: AsyncSession, event_type: ev.EventType, payload: ev.Payload, subject: str
    ) -> None:
        await self.record_many(session, [(event_type, payload, subject)])

    async def record_many(
        self, session: AsyncSession, items: list[tuple[ev.EventType, ev.Payload, str]]
    ) -> None:
        """Write events to the outbox in one statement (the period close records thousands);
        they are dispatched once the transaction commits."""
        await UnitOfWork(session, self.recorder).emit_many(items)

    def published_after_commit(self, session: AsyncSession) -> None:
        """Publish what a committed job transaction recorded (the relay is the safety net)."""
        self.recorder.dispatch(self.recorder.take_pending(session))


# --- accounts and plans --------------------------------------------------------------------


def plan_kind_for_tier(tier: str) -> PlanKind:
    try:
        return PlanKind(tier)
    except ValueError:
        log.warning("unknown support tier %r; billing it hourly", tier)
        return PlanKind.HOURLY


def default_plan(settings: Settings, kind: PlanKind) -> dict[str, Any]:
    """The plan values a new account (or a tier change) gets; see the BILLING_DEFAULT_* knobs."""
    overage = {
        PlanKind.HOURLY: settings.default_hourly_rate,
        PlanKind.AGREEMENT: settings.default_agreement_overage_rate,
        PlanKind.BLOCK: settings.default_block_overage_rate,
    }[kind]
    return {
        "kind": kind.value,
        "currency": settings.default_currency.upper(),
        "rate_per_hour_cents": cents(settings.default_hourly_rate),
        "increment_minutes": settings.default_increment_minutes,
        "minimum_minutes_per_ticket": settings.default_minimum_minutes_per_ticket
        if kind is PlanKind.HOURLY
        else 0,
        "tax_rate_ppm": ppm(settings.default_tax_rate),
        "payment_terms_days": settings.default_payment_terms_days,
        "allowance_minutes": settings.default_agreement_allowance_minutes
        if kind is PlanKind.AGREEMENT
        else 0,
        "overage_rate_per_hour_cents": cents(overage),
        "block_low_threshold_percent": settings.block_low_threshold_percent,
    }


async def add_plan_version(
    session: AsyncSession,
    organization_id: UUID,
    values: dict[str, Any],
    *,
    effective_from: date,
    created_by: str,
) -> BillingPlan:
    version = await repo.last_plan_version(session, organization_id) + 1
    plan = BillingPlan(
        organization_id=organization_id,
        version=version,
        effective_from=effective_from,
        created_by=created_by,
        **values,
    )
    session.add(plan)
    await session.flush()
    return plan


async def ensure_account(
    session: AsyncSession,
    billing: Billing,
    *,
    organization_id: UUID,
    name: str,
    support_tier: str,
    timezone: str,
    changed_at: datetime,
) -> bool:
    """Create the account with its tier's default plan (and prepaid block) unless it exists."""
    created = await repo.insert_account_if_missing(
        session,
        {
            "organization_id": organization_id,
            "name": name,
            "support_tier": support_tier,
            "timezone": timezone,
            "source_changed_at": changed_at,
            "opened_at": changed_at,
            "created_at": utcnow(),
            "updated_at": utcnow(),
        },
    )
    if not created:
        await repo.open_account_from(session, organization_id, changed_at)
        return False
    kind = plan_kind_for_tier(support_tier)
    await add_plan_version(
        session,
        organization_id,
        default_plan(billing.settings, kind),
        effective_from=FIRST_PLAN_DATE,
        created_by="default",
    )
    if kind is PlanKind.BLOCK and billing.settings.default_block_minutes > 0:
        await add_block(
            session,
            organization_id,
            minutes=billing.settings.default_block_minutes,
            purchased_at=ACCOUNT_START,
            expires_at=_default_expiry(billing.settings, changed_at),
            reference="initial block",
            created_by="default",
        )
    return True


def _default_expiry(settings: Settings, purchased_at: datetime) -> datetime | None:
    """``BILLING_DEFAULT_BLOCK_VALID_DAYS`` after the purchase (None: blocks never expire)."""
    if not settings.default_block_valid_days:
        return None
    return purchased_at + timedelta(days=settings.default_block_valid_days)


async def add_block(
    session: AsyncSession,
    organization_id: UUID,
    *,
    minutes: int,
    purchased_at: datetime,
    expires_at: datetime | None,
    reference: str,
    created_by: str,
) -> PrepaidBlock:
    block = PrepaidBlock(
        organization_id=organization_id,
        minutes=minutes,
        purchased_at=purchased_at,
        expires_at=expires_at,
        reference=reference,
        created_by=created_by,
    )
    session.add(block)
    await session.flush()
    return block


async def apply_organization(
    session: AsyncSession, billing: Billing, organization: ev.OrganizationV1, changed_at: datetime
) -> None:
    """organization.created / updated / sla_signed: keep the account's name, tier and timezone.
    A tier change brings that tier's default plan from the (local) day of the change."""
    fields = {
        "name": organization.name,
        "support_tier": organization.support_tier,
        "timezone": organization.timezone,
    }
    if await ensure_account(
        session, billing, organization_id=organization.organization_id, changed_at=changed_at, **fields
    ):
        return
    before = await repo.get_account(session, organization.organization_id, for_update=True)
    if not await repo.update_account_if_newer(session, organization.organization_id, changed_at, fields):
        return
    if before is not None and before.support_tier != organization.support_tier:
        kind = plan_kind_for_tier(organization.support_tier)
        effective = local_date(changed_at, organization.timezone)
        current = await repo.plan_in_force(session, organization.organization_id, effective)
        if current is None or current.kind != kind:
            await add_plan_version(
                session,
                organization.organization_id,
                default_plan(billing.settings, kind),
                effective_from=effective,
                created_by="tier change",
            )


# --- projections of tickets and time entries ------------------------------------------------


async def observe_ticket(
    session: AsyncSession,
    *,
    ticket_id: UUID,
    organization_id: UUID | None,
    number: str,
    status: str,
    status_at: datetime,
) -> None:
    inserted = await repo.insert_ticket_if_missing(
        session,
        {
            "ticket_id": ticket_id,
            "organization_id": organization_id,
            "number": number,
            "status": status,
            "status_at": status_at,
        },
    )
    if not inserted:
        await repo.observe_ticket_status(
            session, ticket_id, status, status_at, organization_id=organization_id
        )


async def observe_status_change(
    session: AsyncSession, change: ev.TicketStatusChangedV1, changed_at: datetime
) -> None:
    """ticket.status_changed: billing knows a reopen as soon as it happens (the period close
    draws time on closed tickets only; a close is charged by ticket.closed)."""
    await observe_ticket(
        session,
        ticket_id=change.ticket_id,
        organization_id=change.organization.id if change.organization else None,
        number=change.number,
        status=change.to_status,
        status_at=changed_at,
    )


async def apply_time_entry(session: AsyncSession, entry: ev.TimeEntryV1, changed_at: datetime) -> None:
    """Apply a time entry's newest revision to the usage ledger: reverse what the previous
    revision added, add the new minutes. An older revision arriving late changes nothing."""
    if entry.organization_id is None:
        log.info("time entry %s has no organization; nothing to bill", entry.time_entry_id)
        return
    current = await repo.get_time_entry(session, entry.time_entry_id, for_update=True)
    if current is not None and current.revision >= entry.revision:
        return
    usage: list[dict[str, Any]] = []
    if current is not None and not current.deleted:
        usage.append(_usage_row(current, UsageKind.REVERSAL, changed_at))
    values: dict[str, Any] = {
        "organization_id": entry.organization_id,
        "ticket_id": entry.ticket_id,
        "ticket_number": entry.ticket_number,
        "revision": entry.revision,
        "agent_id": entry.agent_id,
        "minutes": entry.minutes,
        "billable": entry.billable,
        "deleted": entry.deleted,
        "started_at": entry.started_at,
        "description": entry.description,
        "changed_at": changed_at,
        "needs_charge": True,
    }
    state = TimeEntryState(time_entry_id=entry.time_entry_id, **values)
    if not entry.deleted:
        usage.append(_usage_row(state, UsageKind.USAGE, changed_at))
    await repo.insert_usage(session, usage)
    if current is None:
        await repo.insert_time_entry(session, {"time_entry_id": entry.time_entry_id, **values})
    else:
        await repo.update_time_entry(session, entry.time_entry_id, values)
    await observe_ticket(
        session,
        ticket_id=entry.ticket_id,
        organization_id=entry.organization_id,
        number=entry.ticket_number,
        status=entry.ticket_status,
        status_at=changed_at,
    )
    # Delivered after its close was charged: that close is charged again for what it missed.
    await repo.resettle_close_before(session, entry.ticket_id, changed_at)


def _usage_row(state: TimeEntryState, kind: UsageKind, changed_at: datetime) -> dict[str, Any]:
    sign = -1 if kind is UsageKind.REVERSAL else 1
    return {
        "id": new_id(),
        "organization_id": state.organization_id,
        "time_entry_id": state.time_entry_id,
        "revision": state.revision,
        "kind": kind.value,
        "ticket_id": state.ticket_id,
        "ticket_number": state.ticket_number,
        "agent_id": state.agent_id,
        "minutes": sign * state.minutes,
        "billable": state.billable,
        "started_at": state.started_at,
        "changed_at": changed_at,
        "recorded_at": utcnow(),
    }


async def record_close(
    session: AsyncSession, billing: Billing, closed: ev.TicketClosedV1, changed_at: datetime
) -> None:
    """ticket.closed: remember the close; it is charged ``close_settle_delay_seconds`` later, so
    time entry events the queue delivers after the close still make the same invoice."""
    organization = closed.organization
    if organization is None:
        log.info("ticket %s has no organization; nothing to bill", closed.number)
        return
    await ensure_account(
        session,
        billing,
        organization_id=organization.id,
        name=organization.name,
        support_tier=organization.support_tier,
        timezone=organization.timezone,
        changed_at=changed_at,
    )
    await observe_ticket(
        session,
        ticket_id=closed.ticket_id,
        organization_id=organization.id,
        number=closed.number,
        status="closed",
        status_at=changed_at,
    )
    await repo.mark_close_to_settle(
        session,
        closed.ticket_id,
        closed.closed_at,
        closed.closed_at + timedelta(seconds=billing.settings.close_settle_delay_seconds),
        str(closed.contact.email),
    )


# --- charging a close -------------------------------------------------------------------------


@dataclass
class ChargeDraft:
    time_entry_id: UUID | None
    kind: ChargeKind
    minutes: int
    period_key: str | None = None
    block_id: UUID | None = None
    rate_per_hour_cents: int | None = None


@dataclass
class LineDraft:
    description: str
    ticket_number: str | None
    time_entry_id: UUID | None
    work_date: date | None
    minutes: int
    rate_per_hour_cents: int
    amount: Decimal


# What one invoiced amount is priced on: a time entry's minutes (or a ticket's minimum charge,
# entry None) at a rate, or a ticket's minutes beyond its prepaid blocks at a rate.
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


def _describe(entry: TimeEntryState | None, account: BillingAccount, credit: bool) -> str:
    if entry is None:
        text = "Minimum charge per ticket"
    else:
        text = (entry.description or "Time worked").strip().splitlines()[0][:200]
    return f"Correction: {text}" if credit else text


def plan_at(plans: list[BillingPlan], on: date) -> BillingPlan:
    """The version in force on ``on`` among ``plans`` (sorted by date, then version)."""
    current = plans[0]
    for plan in plans:
        if plan.effective_from <= on:
            current = plan
    return current


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


OVERAGE_TEXT = "Time beyond prepaid hours"


def _overage_lines(settlement: Settlement) -> None:
    """One line per rate for the close's minutes beyond the prepaid blocks, priced once."""
    for rate_cents, minutes in sorted(settlement.overage.items()):
        if minutes:
            settlement.lines.append(
                LineDraft(
                    description=f"Correction: {OVERAGE_TEXT.lower()}" if minutes < 0 else OVERAGE_TEXT,
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
            description=_describe(entry, settlement.account, credit=minutes < 0),
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


async def settle_ticket(session: AsyncSession, billing: Billing, ticket_id: UUID, *, now: datetime) -> bool:
    """Charge a ticket's close (once: the mark is cleared in the same transaction). The account
    row is locked first, so closes of one organization queue up and never lose an update."""
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
    await apply_settlement(session, billing, settlement)
    return True


async def apply_settlement(session: AsyncSession, billing: Billing, settlement: Settlement) -> None:
    """Write what a close charges, as of the close's instant: its invoice (only when there is
    an amount to pay or credit: lines that cancel out get no number), charges and notices."""
    invoice_id: UUID | None = None
    if sum((line.amount for line in settlement.lines), Decimal(0)) != 0:
        (invoice_id,) = await issue_invoices(
            session,
            billing,
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
        session,
        billing,
        [(settlement.account, settlement.plan, key, settlement.charged_at) for key in periods],
    )
    if PlanKind(settlement.plan.kind) is PlanKind.BLOCK and any(d.minutes > 0 for d in settlement.charges):
        await notify_blocks(session, billing, settlement)


# --- notices ---------------------------------------------------------------------------------


# (account, its plan, the period drawn from, the instant of the close that drew)
AllowanceTarget = tuple[BillingAccount, BillingPlan, str, datetime]


async def notify_allowances(session: AsyncSession, billing: Billing, targets: list[AllowanceTarget]) -> None:
    """allowance.threshold_reached at 80 % and at 100 %, each once per (account, period): the
    notice row's key is the "once". Set-based, for the period close's thousands of accounts."""
    targets = [target for target in targets if PlanKind(target[1].kind) is PlanKind.AGREEMENT]
    used: dict[tuple[UUID, str], int] = {}
    for period_key in sorted({key for _, _, key, _ in targets}):
        organization_ids = [account.organization_id for account, _, key, _ in targets if key == period_key]
        for organization_id, minutes in (
            await repo.allowance_used(session, organization_ids, period_key)
        ).items():
            used[(organization_id, period_key)] = minutes
    candidates = []
    for account, plan, period_key, occurred_at in targets:
        minutes = used.get((account.organization_id, period_key), 0)
        for threshold in thresholds_reached(minutes, plan.allowance_minutes):
            candidates.append((account, plan, period_key, threshold, minutes, occurred_at))
    claimed = await repo.claim_notices(
        session,
        [
            {
                "organization_id": account.organization_id,
                "notice": f"allowance.{threshold}",
                "scope": key,
                "period_key": key,
                "occurred_at": occurred_at,
                "minutes": minutes,
                "of_minutes": plan.allowance_minutes,
                "threshold_percent": threshold,
            }
            for account, plan, key, threshold, minutes, occurred_at in candidates
        ],
    )
    events: list[tuple[ev.EventType, ev.Payload, str]] = []
    for account, plan, period_key, threshold, minutes, _ in candidates:
        if (account.organization_id, f"allowance.{threshold}", period_key) not in claimed:
            continue
        period = parse_period_key(period_key, account.timezone)
        payload = ev.AllowanceThresholdReachedV1(
            organization_id=account.organization_id,
            organization_name=account.name,
            billing_email=account.billing_email,
            period=period_key,
            period_starts_at=period.starts_at,
            period_ends_at=period.ends_at,
            threshold=threshold,
            used_minutes=minutes,
            allowance_minutes=plan.allowance_minutes,
            overage_rate_per_hour=plan.overage_rate_per_hour,
            currency=plan.currency,
        )
        events.append(
            (ev.EventType.ALLOWANCE_THRESHOLD_REACHED, payload, f"organization:{account.organization_id}")
        )
    await billing.record_many(session, events)


async def notify_blocks(session: AsyncSession, billing: Billing, settlement: Settlement) -> None:
    """block.low and block.exhausted, each once per purchase (keyed by the newest block usable
    at the close, so a new block re-arms both); the low threshold is the plan's."""
    account, plan = settlement.account, settlement.plan
    remaining = sum(max(block.remaining, 0) for block in settlement.blocks)
    percent = plan.block_low_threshold_percent
    scope = str(settlement.newest_block_id) if settlement.newest_block_id else "none"
    rows = [
        {
            "organization_id": account.organization_id,
            "notice": f"block.{notice}",
            "scope": scope,
            "period_key": period_of(settlement.charged_at, account.timezone).key,
            "occurred_at": settlement.charged_at,
            "minutes": remaining,
            "of_minutes": settlement.purchased_minutes,
            "threshold_percent": percent,
        }
        for notice in block_notices(remaining, settlement.purchased_minutes, percent)
    ]
    claimed = await repo.claim_notices(session, rows)
    for row in rows:
        if (account.organization_id, row["notice"], scope) not in claimed:
            continue
        payload = ev.BlockBalanceV1(
            organization_id=account.organization_id,
            organization_name=account.name,
            billing_email=account.billing_email,
            remaining_minutes=remaining,
            purchased_minutes=settlement.purchased_minutes,
            low_threshold_percent=percent,
            newest_block_id=settlement.newest_block_id,
            overage_rate_per_hour=plan.overage_rate_per_hour,
            currency=plan.currency,
        )
        event_type = ev.EventType.BLOCK_LOW if row["notice"] == "block.low" else ev.EventType.BLOCK_EXHAUSTED
        await billing.record(session, event_type, payload, f"organization:{account.organization_id}")


# --- invoices --------------------------------------------------------------------------------


@dataclass
class InvoiceDraft:
    account: BillingAccount
    plan: BillingPlan
    kind: InvoiceKind
    lines: list[LineDraft]
    ticket_id: UUID | None = None
    ticket_number: str | None = None
    period_key: str | None = None
    contact_email: str | None = None
    # The instant the invoice is for (a ticket's close, a period's end): its date, due date,
    # number series and issue time, whenever billing gets round to issuing it.
    dated_at: datetime = field(default_factory=utcnow)


def invoice_number(year: int, sequence: int) -> str:
    return f"INV-{year}-{sequence:06d}"


def pdf_url(settings: Settings, invoice_id: UUID) -> str:
    return f"{settings.public_base_url.rstrip('/')}{API}/invoices/{invoice_id}/pdf"


async def issue_invoices(session: AsyncSession, billing: Billing, drafts: list[InvoiceDraft]) -> list[UUID]:
    """Number, total and store invoices, and record an ``invoice.issued`` for each — all in the
    caller's transaction, so the numbers, the invoices and the events commit (or vanish) together.
    Each is dated by its own instant in ``BILLING_ISSUER_TIMEZONE`` (date, due date, year)."""
    if not drafts:
        return []
    settings = billing.settings
    dates = [local_date(draft.dated_at, settings.issuer_timezone) for draft in drafts]
    years = [day.year for day in dates]
    numbers = {
        year: iter(await repo.allocate_invoice_numbers(session, year, years.count(year)))
        for year in sorted(set(years))
    }
    invoices: list[dict[str, Any]] = []
    lines: list[dict[str, Any]] = []
    events: list[tuple[ev.EventType, ev.Payload, str]] = []
    for draft, invoice_date in zip(drafts, dates, strict=True):
        sequence = next(numbers[invoice_date.year])
        invoice_id = new_id()
        plan = draft.plan
        amounts = [line.amount for line in draft.lines]
        totals = invoice_totals(amounts, plan.tax_rate)
        row = {
            "id": invoice_id,
            "number": invoice_number(invoice_date.year, sequence),
            "organization_id": draft.account.organization_id,
            "organization_name": draft.account.name,
            "kind": draft.kind.value,
            "ticket_id": draft.ticket_id,
            "ticket_number": draft.ticket_number,
            "period_key": draft.period_key,
            "currency": plan.currency,
            "subtotal_cents": cents(totals.subtotal),
            "tax_rate_ppm": plan.tax_rate_ppm,
            "tax_cents": cents(totals.tax),
            "total_cents": cents(totals.total),
            "issued_at": draft.dated_at,
            "invoice_date": invoice_date,
            "due_date": invoice_date + timedelta(days=plan.payment_terms_days),
            "payment_instructions": settings.payment_instructions,
            "bill_to_email": draft.account.billing_email or draft.contact_email,
            "status": InvoiceStatus.ISSUED.value,
        }
        invoices.append(row)
        for position, (line, amount) in enumerate(zip(draft.lines, amounts, strict=True), start=1):
            lines.append(
                {
                    "id": new_id(),
                    "invoice_id": invoice_id,
                    "position": position,
                    "description": line.description,
                    "ticket_number": line.ticket_number,
                    "time_entry_id": line.time_entry_id,
                    "work_date": line.work_date,
                    "minutes": line.minutes,
                    "rate_per_hour_cents": line.rate_per_hour_cents,
                    "amount_cents": cents(amount),
                }
            )
        payload = ev.InvoiceIssuedV1(
            invoice_id=invoice_id,
            number=row["number"],
            kind=row["kind"],
            organization_id=row["organization_id"],
            organization_name=row["organization_name"],
            ticket_id=draft.ticket_id,
            ticket_numbers=[draft.ticket_number] if draft.ticket_number else [],
            period=draft.period_key,
            currency=plan.currency,
            subtotal=totals.subtotal,
            tax_rate=plan.tax_rate,
            tax=totals.tax,
            total=totals.total,
            issued_at=draft.dated_at,
            invoice_date=invoice_date,
            due_date=row["due_date"],
            payment_instructions=settings.payment_instructions,
            bill_to_email=row["bill_to_email"],
            lines=[
                ev.InvoiceLineV1(
                    description=line.description,
                    ticket_number=line.ticket_number,
                    minutes=line.minutes,
                    rate_per_hour=from_cents(line.rate_per_hour_cents),
                    amount=amount,
                )
                for line, amount in zip(draft.lines, amounts, strict=True)
            ],
            pdf_url=pdf_url(settings, invoice_id),
        )
        events.append((ev.EventType.INVOICE_ISSUED, payload, f"invoice:{invoice_id}"))
    await repo.insert_invoices(session, invoices, lines)
    await billing.record_many(session, events)
    return [row["id"] for row in invoices]


# --- what the API shows ----------------------------------------------------------------------


def plan_public(plan: BillingPlan) -> PlanPublic:
    return PlanPublic(
        id=plan.id,
        version=plan.version,
        kind=PlanKind(plan.kind),
        effective_from=plan.effective_from,
        currency=plan.currency,
        rate_per_hour=plan.rate_per_hour,
        increment_minutes=plan.increment_minutes,
        minimum_minutes_per_ticket=plan.minimum_minutes_per_ticket,
        tax_rate=plan.tax_rate,
        payment_terms_days=plan.payment_terms_days,
        allowance_minutes=plan.allowance_minutes,
        overage_rate_per_hour=plan.overage_rate_per_hour,
        block_low_threshold_percent=plan.block_low_threshold_percent,
        created_by=plan.created_by,
        created_at=plan.created_at,
    )


async def visible_account(
    session: AsyncSession, principal: Principal, organization_id: UUID
) -> BillingAccount:
    """The account, if the caller may see it (another organization's answers 404, as a missing one)."""
    account = await repo.get_account(session, organization_id)
    if account is None or not principal.can_see_organization(organization_id):
        raise AccountNotFound(f"No billing account for organization {organization_id}.")
    assert isinstance(account, BillingAccount)
    return account


async def allowance_in(
    session: AsyncSession, account: BillingAccount, plan: BillingPlan, period: Period
) -> AllowancePublic:
    used = (await repo.allowance_used(session, [account.organization_id], period.key)).get(
        account.organization_id, 0
    )
    return AllowancePublic(
        period=period.key,
        allowance_minutes=plan.allowance_minutes,
        used_minutes=used,
        remaining_minutes=plan.allowance_minutes - used,
    )


async def blocks_public(session: AsyncSession, organization_id: UUID, *, now: datetime) -> list[BlockPublic]:
    return [
        BlockPublic(
            id=block.id,
            minutes=block.minutes,
            used_minutes=used,
            remaining_minutes=block.minutes - used,
            purchased_at=block.purchased_at,
            expires_at=block.expires_at,
            expired=block.expires_at is not None and block.expires_at <= now,
            reference=block.reference,
        )
        for block, used in await repo.blocks_with_use(session, organization_id)
    ]


def prepaid_remaining(blocks: list[BlockPublic]) -> int:
    """What is left to draw: the unexpired blocks' remaining minutes."""
    return sum(max(block.remaining_minutes, 0) for block in blocks if not block.expired)


async def account_public(session: AsyncSession, account: BillingAccount, *, now: datetime) -> AccountPublic:
    plan = await repo.plan_in_force(session, account.organization_id, local_date(now, account.timezone))
    assert plan is not None
    kind = PlanKind(plan.kind)
    allowance = (
        await allowance_in(session, account, plan, period_of(now, account.timezone))
        if kind is PlanKind.AGREEMENT
        else None
    )
    prepaid = (
        prepaid_remaining(await blocks_public(session, account.organization_id, now=now))
        if kind is PlanKind.BLOCK
        else None
    )
    return AccountPublic(
        organization_id=account.organization_id,
        name=account.name,
        support_tier=account.support_tier,
        timezone=account.timezone,
        billing_email=account.billing_email,
        plan=plan_public(plan),
        allowance=allowance,
        prepaid_remaining_minutes=prepaid,
        closed_through=account.closed_through,
    )


async def add_plan(
    session: AsyncSession, billing: Billing, principal: Principal, account: BillingAccount, data: PlanCreate
) -> BillingPlan:
    """A new plan version from ``effective_from``. Unset fields keep the values of the plan in
    force that day when it is of the same kind, else the defaults of the new kind."""
    require_admin(principal)
    current = await repo.plan_in_force(session, account.organization_id, data.effective_from)
    base = default_plan(billing.settings, data.kind)
    if current is not None and current.kind == data.kind.value:
        base = {key: getattr(current, key) for key in base}
    changes = data.model_dump(exclude_unset=True, exclude={"kind", "effective_from"})
    money_fields = {
        "rate_per_hour": "rate_per_hour_cents",
        "overage_rate_per_hour": "overage_rate_per_hour_cents",
    }
    for name, value in changes.items():
        if value is None:
            continue
        if name in money_fields:
            base[money_fields[name]] = cents(value)
        elif name == "tax_rate":
            base["tax_rate_ppm"] = ppm(value)
        else:
            base[name] = value
    base["kind"] = data.kind.value
    if data.kind is PlanKind.AGREEMENT and base["allowance_minutes"] <= 0:
        raise InvalidPlan("An agreement includes some minutes a month (allowance_minutes > 0).")
    return await add_plan_version(
        session,
        account.organization_id,
        base,
        effective_from=data.effective_from,
        created_by=principal.audit_ref,
    )


async def add_block_for(
    session: AsyncSession,
    billing: Billing,
    principal: Principal,
    account: BillingAccount,
    data: BlockCreate,
    *,
    now: datetime,
) -> PrepaidBlock:
    require_admin(principal)
    purchased_at = data.purchased_at or now
    if data.expires_at is not None and data.expires_at <= purchased_at:
        raise InvalidPlan("A block expires after it is bought.")
    return await add_block(
        session,
        account.organization_id,
        minutes=data.minutes,
        purchased_at=purchased_at,
        expires_at=data.expires_at or _default_expiry(billing.settings, purchased_at),
        reference=data.reference,
        created_by=principal.audit_ref,
    )


def period_for(account: BillingAccount, key: str | None, *, now: datetime) -> Period:
    if key is None:
        return period_of(now, account.timezone)
    try:
        return parse_period_key(key, account.timezone)
    except ValueError as error:
        raise InvalidPeriod(str(error)) from None


async def usage_summary(session: AsyncSession, account: BillingAccount, period: Period) -> UsageSummary:
    rows = await repo.usage_by_entry(session, account.organization_id, period.starts_at, period.ends_at)
    tickets: dict[UUID, UsageTicketPublic] = {}
    for row in rows:
        ticket = tickets.setdefault(
            row.ticket_id,
            UsageTicketPublic(
                ticket_id=row.ticket_id,
                ticket_number=row.ticket_number,
                billable_minutes=0,
                non_billable_minutes=0,
            ),
        )
        if row.billable:
            ticket.billable_minutes += int(row.minutes)
        else:
            ticket.non_billable_minutes += int(row.minutes)
    plan = await repo.plan_in_force(session, account.organization_id, period.last_day)
    assert plan is not None
    kind = PlanKind(plan.kind)
    billable = sum(t.billable_minutes for t in tickets.values())
    non_billable = sum(t.non_billable_minutes for t in tickets.values())
    invoiced = await repo.invoiced_between(session, account.organization_id, period.starts_at, period.ends_at)
    return UsageSummary(
        organization_id=account.organization_id,
        period=period.key,
        starts_at=period.starts_at,
        ends_at=period.ends_at,
        timezone=account.timezone,
        plan_kind=kind,
        increment_minutes=plan.increment_minutes,
        minimum_minutes_per_ticket=plan.minimum_minutes_per_ticket,
        logged_minutes=billable + non_billable,
        billable_minutes=billable,
        non_billable_minutes=non_billable,
        charged_minutes=await repo.charged_between(
            session, account.organization_id, period.starts_at, period.ends_at
        ),
        allowance=await allowance_in(session, account, plan, period) if kind is PlanKind.AGREEMENT else None,
        invoiced_total={currency: from_cents(total) for currency, total in invoiced},
        tickets=[t for t in tickets.values() if t.billable_minutes or t.non_billable_minutes],
    )


CSV_HEADER = ["ticket_number", "time_entry_id", "agent_id", "started_at", "billable", "minutes"]


async def usage_csv_rows(session: AsyncSession, account: BillingAccount, period: Period) -> list[list[str]]:
    """One row per time entry (and billable flag) with work started in the period, net of corrections."""
    rows = await repo.usage_by_entry(session, account.organization_id, period.starts_at, period.ends_at)
    return [CSV_HEADER] + [
        [
            row.ticket_number,
            str(row.time_entry_id),
            str(row.agent_id),
            row.started_at.isoformat() if isinstance(row.started_at, datetime) else str(row.started_at),
            "true" if row.billable else "false",
            str(int(row.minutes)),
        ]
        for row in rows
        if row.minutes
    ]


async def visible_invoice(
    session: AsyncSession, principal: Principal, invoice_id: UUID, *, for_update: bool = False
) -> Invoice:
    invoice = await repo.get_invoice(session, invoice_id, for_update=for_update)
    if invoice is None or not principal.can_see_organization(invoice.organization_id):
        raise InvoiceNotFound(f"No invoice {invoice_id}.")
    return invoice


def invoice_public(settings: Settings, invoice: Invoice, lines: list[InvoiceLine]) -> InvoicePublic:
    return InvoicePublic(
        id=invoice.id,
        number=invoice.number,
        organization_id=invoice.organization_id,
        organization_name=invoice.organization_name,
        kind=InvoiceKind(invoice.kind),
        ticket_id=invoice.ticket_id,
        ticket_number=invoice.ticket_number,
        period=invoice.period_key,
        currency=invoice.currency,
        subtotal=invoice.subtotal,
        tax_rate=invoice.tax_rate,
        tax=invoice.tax,
        total=invoice.total,
        issued_at=invoice.issued_at,
        invoice_date=invoice.invoice_date,
        due_date=invoice.due_date,
        payment_instructions=invoice.payment_instructions,
        status=InvoiceStatus(invoice.status),
        paid_at=invoice.paid_at,
        voided_at=invoice.voided_at,
        void_reason=invoice.void_reason,
        lines=[
            InvoiceLinePublic(
                position=line.position,
                description=line.description,
                ticket_number=line.ticket_number,
                time_entry_id=line.time_entry_id,
                work_date=line.work_date,
                minutes=line.minutes,
                rate_per_hour=line.rate_per_hour,
                amount=line.amount,
            )
            for line in lines
        ],
        pdf_url=pdf_url(settings, invoice.id),
    )


async def mark_paid(
    session: AsyncSession, principal: Principal, invoice_id: UUID, *, paid_at: datetime
) -> Invoice:
    require_admin(principal)
    invoice = await visible_invoice(session, principal, invoice_id, for_update=True)
    if invoice.status == InvoiceStatus.PAID:
        return invoice  # marking paid twice is harmless
    if invoice.status != InvoiceStatus.ISSUED:
        raise InvoiceStateConflict(
            f"Invoice {invoice.number} is {invoice.status}; only an issued one can be paid."
        )
    invoice.status = InvoiceStatus.PAID
    invoice.paid_at = paid_at
    await session.flush()
    return invoice


async def void_invoice(
    session: AsyncSession, principal: Principal, invoice_id: UUID, *, reason: str, now: datetime
) -> Invoice:
    """Cancel an unpaid invoice. Its number stays used (no gaps); the time it charged stays
    charged and is not billed again."""
    require_admin(principal)
    invoice = await visible_invoice(session, principal, invoice_id, for_update=True)
    if invoice.status != InvoiceStatus.ISSUED:
        raise InvoiceStateConflict(
            f"Invoice {invoice.number} is {invoice.status}; only an issued one can be voided."
        )
    invoice.status = InvoiceStatus.VOID
    invoice.voided_at = now
    invoice.void_reason = reason
    await session.flush()
    return invoice


def notice_public(notice: Notice) -> NoticePublic:
    kind = NoticeKind(notice.notice)
    allowance = kind in (NoticeKind.ALLOWANCE_80, NoticeKind.ALLOWANCE_100)
    return NoticePublic(
        organization_id=notice.organization_id,
        kind=kind,
        period=notice.period_key if notice.period_key else (notice.scope if allowance else None),
        occurred_at=notice.occurred_at,
        sent_at=notice.sent_at,
        threshold_percent=notice.threshold_percent,
        used_minutes=notice.minutes if allowance else None,
        allowance_minutes=notice.of_minutes if allowance else None,
        remaining_minutes=None if allowance else notice.minutes,
        purchased_minutes=None if allowance else notice.of_minutes,
        newest_block_id=None if allowance or notice.scope == "none" else UUID(notice.scope),
    )


def _charged_to(draft: ChargeDraft) -> str:
    if draft.kind is ChargeKind.ALLOWANCE:
        return f"allowance {draft.period_key}"
    return f"prepaid block {draft.block_id}"


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
                entries.get(draft.time_entry_id) if draft.time_entry_id else None,
                account,
                credit=draft.minutes < 0,
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
            charged_to="invoice",
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
