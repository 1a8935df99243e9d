"""billing's rules: projections from events, charging a ticket's close, invoices, notices.

Handlers and routes pass the session; these functions only flush. Events go to the outbox in
the same transaction through ``Billing.record``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

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
from services.billing.models import (
    BillingAccount,
    BillingPlan,
    ChargeKind,
    InvoiceKind,
    InvoiceStatus,
    PlanKind,
    PrepaidBlock,
    TicketState,
    TimeEntryState,
    UsageKind,
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
from shared.ids import new_id
from shared.outbox import Outbox

log = logging.getLogger(__name__)

PRODUCER = ev.Service.BILLING
API = "/api/v1/billing"
# The first plan of an account applies from the start of time: events may arrive in any order.
FIRST_PLAN_DATE = date(2000, 1, 1)


def event_recorder() -> Outbox:
    """An outbox used only to *record* events in a caller's transaction (the worker's or API's
    runtime publishes them after commit)."""
    return Outbox(outbox, async_sessionmaker(), publish=None)


@dataclass(frozen=True)
class Billing:
    """What billing's rules need besides the session: settings and a way to record events."""

    settings: Settings
    recorder: Outbox = field(default_factory=event_recorder)

    async def record(
        self, session: AsyncSession, event_type: ev.EventType, payload: ev.Payload, subject: str
    ) -> None:
        await self.recorder.record(
            session, ev.new_event(event_type, payload, producer=PRODUCER, subject=subject)
        )

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
            "created_at": utcnow(),
            "updated_at": utcnow(),
        },
    )
    if not created:
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
            billing.settings,
            organization_id,
            minutes=billing.settings.default_block_minutes,
            purchased_at=changed_at,
            expires_at=None,
            reference="initial block",
            created_by="default",
        )
    return True


async def add_block(
    session: AsyncSession,
    settings: Settings,
    organization_id: UUID,
    *,
    minutes: int,
    purchased_at: datetime,
    expires_at: datetime | None,
    reference: str,
    created_by: str,
) -> PrepaidBlock:
    if expires_at is None and settings.default_block_valid_days:
        expires_at = purchased_at + timedelta(days=settings.default_block_valid_days)
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
    values = {
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

    @property
    def amount(self) -> Decimal:
        return time_amount(self.minutes, from_cents(self.rate_per_hour_cents))


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
    return settlement


def _charge_invoiced(
    settlement: Settlement,
    entry: TimeEntryState | None,
    time_entry_id: UUID | None,
    minutes: int,
    kind: ChargeKind,
    rate_cents: int,
) -> None:
    settlement.charges.append(ChargeDraft(time_entry_id, kind, minutes, rate_per_hour_cents=rate_cents))
    description = _describe(entry, settlement.account, credit=minutes < 0)
    if kind is ChargeKind.BLOCK_OVERAGE:
        description = f"{description} (beyond prepaid hours)"
    settlement.lines.append(
        LineDraft(
            description=description,
            ticket_number=settlement.ticket.number,
            time_entry_id=time_entry_id,
            work_date=local_date(entry.started_at, settlement.account.timezone) if entry else None,
            minutes=minutes,
            rate_per_hour_cents=rate_cents,
        )
    )


async def _load_blocks(session: AsyncSession, settlement: Settlement) -> None:
    usable = [
        (block, used)
        for block, used in await repo.blocks_with_use(session, settlement.account.organization_id)
        if block.expires_at is None or block.expires_at > settlement.charged_at
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
        kind, block_id, period_key, rate_cents = target  # type: ignore[misc]
        kind = ChargeKind(kind)
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
    settlement = await compute_settlement(session, ticket, account, at=now)
    await apply_settlement(session, billing, settlement, now=now)
    return True


async def apply_settlement(
    session: AsyncSession, billing: Billing, settlement: Settlement, *, now: datetime
) -> None:
    invoice_id: UUID | None = None
    if settlement.lines:
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
                )
            ],
            now=now,
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
                "charged_at": now,
            }
            for draft in settlement.charges
        ],
    )
    await repo.mark_entries_charged(session, settlement.revisions)
    await repo.clear_settle_due(session, settlement.ticket.ticket_id)
    periods = sorted(
        {d.period_key for d in settlement.charges if d.kind is ChargeKind.ALLOWANCE and d.period_key}
    )
    for period_key in periods:
        await notify_allowance(session, billing, settlement.account, settlement.plan, period_key)
    if PlanKind(settlement.plan.kind) is PlanKind.BLOCK and any(d.minutes > 0 for d in settlement.charges):
        await notify_blocks(session, billing, settlement)


# --- notices ---------------------------------------------------------------------------------


async def notify_allowance(
    session: AsyncSession, billing: Billing, account: BillingAccount, plan: BillingPlan, period_key: str
) -> None:
    """allowance.threshold_reached at 80 % and at 100 %, each once per period."""
    if PlanKind(plan.kind) is not PlanKind.AGREEMENT:
        return
    used = (await repo.allowance_used(session, [account.organization_id], period_key)).get(
        account.organization_id, 0
    )
    period = parse_period_key(period_key, account.timezone)
    for threshold in thresholds_reached(used, plan.allowance_minutes):
        if not await repo.claim_notice(
            session, account.organization_id, f"allowance.{threshold}", period_key
        ):
            continue
        payload = ev.AllowanceThresholdReachedV1(
            organization_id=account.organization_id,
            organization_name=account.name,
            billing_email=account.billing_email,
            period=period_key,
            period_starts_at=period.starts_at,
            period_ends_at=period.ends_at,
            threshold=threshold,
            used_minutes=used,
            allowance_minutes=plan.allowance_minutes,
            overage_rate_per_hour=plan.overage_rate_per_hour,
            currency=plan.currency,
        )
        await billing.record(
            session,
            ev.EventType.ALLOWANCE_THRESHOLD_REACHED,
            payload,
            f"organization:{account.organization_id}",
        )


async def notify_blocks(session: AsyncSession, billing: Billing, settlement: Settlement) -> None:
    """block.low and block.exhausted, each once per purchase (keyed by the newest block)."""
    account, plan = settlement.account, settlement.plan
    remaining = sum(max(block.remaining, 0) for block in settlement.blocks)
    percent = billing.settings.block_low_threshold_percent
    scope = str(settlement.newest_block_id) if settlement.newest_block_id else "none"
    for notice in block_notices(remaining, settlement.purchased_minutes, percent):
        if not await repo.claim_notice(session, account.organization_id, f"block.{notice}", scope):
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
        event_type = ev.EventType.BLOCK_LOW if notice == "low" else ev.EventType.BLOCK_EXHAUSTED
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


def invoice_number(year: int, sequence: int) -> str:
    return f"INV-{year}-{sequence:06d}"


def pdf_url(settings: Settings, invoice_id: UUID) -> str:
    return f"{settings.public_base_url.rstrip('/')}{API}/invoices/{invoice_id}/pdf"


async def issue_invoices(
    session: AsyncSession, billing: Billing, drafts: list[InvoiceDraft], *, now: datetime
) -> list[UUID]:
    """Number, total and store invoices, and record an ``invoice.issued`` for each — all in the
    caller's transaction, so the numbers, the invoices and the events commit (or vanish) together."""
    if not drafts:
        return []
    settings = billing.settings
    invoice_date = local_date(now, settings.issuer_timezone)
    numbers = await repo.allocate_invoice_numbers(session, invoice_date.year, len(drafts))
    invoices: list[dict[str, Any]] = []
    lines: list[dict[str, Any]] = []
    for draft, sequence in zip(drafts, numbers, strict=True):
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
            "issued_at": now,
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
            issued_at=now,
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
        await billing.record(session, ev.EventType.INVOICE_ISSUED, payload, f"invoice:{invoice_id}")
    await repo.insert_invoices(session, invoices, lines)
    return [row["id"] for row in invoices]
