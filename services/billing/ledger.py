"""What billing knows of ticket_api's tickets and time entries, from their events, and the
usage ledger they feed: each time entry's newest revision reverses what the previous one added
and adds its own minutes (append-only); a ticket's close is remembered to be charged after the
settle delay. Also the usage the API reports for a period, as a summary or CSV rows."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from services.billing import repository as repo
from services.billing.accounts import allowance_in, ensure_account
from services.billing.errors import InvalidPeriod
from services.billing.models import BillingAccount, PlanKind, TimeEntryState, UsageKind
from services.billing.money import from_cents
from services.billing.periods import Period, parse_period_key, period_of
from services.billing.schemas import UsageSummary, UsageTicketPublic
from services.billing.settings import Settings
from shared import events as ev
from shared.clock import utcnow
from shared.ids import new_id
from shared.vocabulary import TicketStatus

log = logging.getLogger(__name__)


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
    session: AsyncSession, settings: Settings, closed: ev.TicketClosedV1, changed_at: datetime
) -> None:
    """ticket.closed: remember the close; it is charged ``close_settle_delay_seconds`` later, so
    time entry events the queue delivers after the close still make the same invoice."""
    organization = closed.organization
    if organization is None:
        log.info("ticket %s has no organization; nothing to bill", closed.number)
        return
    await ensure_account(
        session,
        settings,
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
        status=TicketStatus.CLOSED,
        status_at=changed_at,
    )
    await repo.mark_close_to_settle(
        session,
        closed.ticket_id,
        closed.closed_at,
        closed.closed_at + timedelta(seconds=settings.close_settle_delay_seconds),
        str(closed.contact.email),
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
