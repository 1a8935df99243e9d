"""Every query billing runs. Functions take the session explicitly and only flush."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import and_, bindparam, case, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from services.billing.models import (
    BillingAccount,
    BillingPlan,
    Charge,
    ChargeKind,
    Invoice,
    InvoiceCounter,
    InvoiceLine,
    Notice,
    PrepaidBlock,
    TicketState,
    TimeEntryState,
    UsageEntry,
)
from shared.clock import utcnow
from shared.db import dialect_of, insert_ignoring_conflicts

# --- accounts ------------------------------------------------------------------------------


async def get_account(session: AsyncSession, organization_id: UUID, *, for_update: bool = False) -> Any:
    query = select(BillingAccount).where(col(BillingAccount.organization_id) == organization_id)
    if for_update and dialect_of(session) == "postgresql":
        query = query.with_for_update()
    return (await session.scalars(query)).one_or_none()


async def insert_account_if_missing(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Create the account; False when it already existed (a concurrent or earlier event)."""
    table = BillingAccount.__table__  # type: ignore[attr-defined]
    statement = insert_ignoring_conflicts(table, dialect_of(session), "organization_id")
    result = await session.execute(statement.values(values).returning(table.c.organization_id))
    return result.first() is not None


async def open_account_from(session: AsyncSession, organization_id: UUID, instant: datetime) -> None:
    """An event older than any seen for the account moves its first period back to it."""
    table = BillingAccount.__table__  # type: ignore[attr-defined]
    await session.execute(
        update(table)
        .where(
            table.c.organization_id == organization_id,
            table.c.closed_through.is_(None),
            or_(table.c.opened_at.is_(None), table.c.opened_at > instant),
        )
        .values(opened_at=instant)
    )


async def update_account_if_newer(
    session: AsyncSession, organization_id: UUID, changed_at: datetime, values: dict[str, Any]
) -> bool:
    table = BillingAccount.__table__  # type: ignore[attr-defined]
    result = await session.execute(
        update(table)
        .where(table.c.organization_id == organization_id, table.c.source_changed_at < changed_at)
        .values(**values, source_changed_at=changed_at, updated_at=utcnow())
        .returning(table.c.organization_id)
    )
    return result.first() is not None


async def list_accounts(
    session: AsyncSession, *, scope: frozenset[UUID] | None, limit: int, after: UUID | None
) -> Sequence[BillingAccount]:
    query = select(BillingAccount).order_by(col(BillingAccount.organization_id)).limit(limit)
    if scope is not None:
        query = query.where(col(BillingAccount.organization_id).in_(scope))
    if after is not None:
        query = query.where(col(BillingAccount.organization_id) > after)
    return (await session.scalars(query)).all()


async def account_close_marks(session: AsyncSession, organization_id: UUID | None = None) -> list[Any]:
    """Every account's (or one's) id, timezone, last closed period and opening instant (the
    period close's to-do list)."""
    table = BillingAccount.__table__  # type: ignore[attr-defined]
    query = select(
        table.c.organization_id,
        table.c.timezone,
        table.c.closed_through,
        func.coalesce(table.c.opened_at, table.c.created_at),
    )
    if organization_id is not None:
        query = query.where(table.c.organization_id == organization_id)
    return list((await session.execute(query)).all())


async def lock_accounts(session: AsyncSession, organization_ids: Sequence[UUID]) -> list[BillingAccount]:
    """Lock these accounts for the transaction, skipping any another worker holds."""
    query = (
        select(BillingAccount)
        .where(col(BillingAccount.organization_id).in_(organization_ids))
        .order_by(col(BillingAccount.organization_id))
    )
    if dialect_of(session) == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list((await session.scalars(query)).all())


async def mark_closed_through(
    session: AsyncSession, organization_ids: Sequence[UUID], period_key: str
) -> None:
    table = BillingAccount.__table__  # type: ignore[attr-defined]
    await session.execute(
        update(table).where(table.c.organization_id.in_(organization_ids)).values(closed_through=period_key)
    )


# --- plans and blocks ------------------------------------------------------------------------


async def plans_of(session: AsyncSession, organization_ids: Sequence[UUID]) -> list[BillingPlan]:
    query = (
        select(BillingPlan)
        .where(col(BillingPlan.organization_id).in_(organization_ids))
        .order_by(col(BillingPlan.organization_id), col(BillingPlan.effective_from), col(BillingPlan.version))
    )
    return list((await session.scalars(query)).all())


async def plan_in_force(session: AsyncSession, organization_id: UUID, on: date) -> BillingPlan | None:
    """The newest version whose date is on or before ``on`` (else the earliest: a plan always applies)."""
    base = select(BillingPlan).where(col(BillingPlan.organization_id) == organization_id)
    plan = (
        await session.scalars(
            base.where(col(BillingPlan.effective_from) <= on)
            .order_by(col(BillingPlan.effective_from).desc(), col(BillingPlan.version).desc())
            .limit(1)
        )
    ).first()
    if plan is None:
        plan = (
            await session.scalars(
                base.order_by(col(BillingPlan.effective_from), col(BillingPlan.version)).limit(1)
            )
        ).first()
    return plan


async def last_plan_version(session: AsyncSession, organization_id: UUID) -> int:
    value = await session.scalar(
        select(func.max(BillingPlan.version)).where(col(BillingPlan.organization_id) == organization_id)
    )
    return int(value or 0)


async def blocks_with_use(session: AsyncSession, organization_id: UUID) -> list[tuple[PrepaidBlock, int]]:
    """The account's prepaid blocks, oldest first, with the minutes drawn from each."""
    used = (
        select(Charge.block_id, func.sum(Charge.minutes).label("used"))
        .where(col(Charge.organization_id) == organization_id, col(Charge.block_id).is_not(None))
        .group_by(col(Charge.block_id))
        .subquery()
    )
    rows = await session.execute(
        select(PrepaidBlock, func.coalesce(used.c.used, 0))
        .outerjoin(used, used.c.block_id == PrepaidBlock.id)
        .where(col(PrepaidBlock.organization_id) == organization_id)
        .order_by(col(PrepaidBlock.purchased_at), col(PrepaidBlock.id))
    )
    return [(block, int(use)) for block, use in rows.all()]


# --- ticket and time entry projections -----------------------------------------------------


async def get_ticket(session: AsyncSession, ticket_id: UUID) -> TicketState | None:
    return await session.get(TicketState, ticket_id, populate_existing=True)


async def insert_ticket_if_missing(session: AsyncSession, values: dict[str, Any]) -> bool:
    table = TicketState.__table__  # type: ignore[attr-defined]
    statement = insert_ignoring_conflicts(table, dialect_of(session), "ticket_id")
    result = await session.execute(statement.values(values).returning(table.c.ticket_id))
    return result.first() is not None


async def observe_ticket_status(
    session: AsyncSession, ticket_id: UUID, status: str, status_at: datetime, **values: Any
) -> None:
    """Take ``status`` if it is newer news than what we hold."""
    table = TicketState.__table__  # type: ignore[attr-defined]
    await session.execute(
        update(table)
        .where(table.c.ticket_id == ticket_id, table.c.status_at < status_at)
        .values(status=status, status_at=status_at, **values)
    )


async def mark_close_to_settle(
    session: AsyncSession,
    ticket_id: UUID,
    closed_at: datetime,
    settle_due_at: datetime,
    contact_email: str | None,
) -> None:
    """A close happened: keep the latest close time and schedule (once) its charge."""
    table = TicketState.__table__  # type: ignore[attr-defined]
    latest = func.greatest if dialect_of(session) == "postgresql" else func.max
    await session.execute(
        update(table)
        .where(table.c.ticket_id == ticket_id)
        .values(
            closed_at=latest(func.coalesce(table.c.closed_at, closed_at), closed_at),
            settle_due_at=func.coalesce(table.c.settle_due_at, settle_due_at),
            contact_email=func.coalesce(contact_email, table.c.contact_email),
        )
    )


async def resettle_close_before(session: AsyncSession, ticket_id: UUID, changed_at: datetime) -> None:
    """A change made before the ticket's last close, arriving after that close was charged:
    mark the close to be charged again (at once; only the difference is charged)."""
    table = TicketState.__table__  # type: ignore[attr-defined]
    await session.execute(
        update(table)
        .where(
            table.c.ticket_id == ticket_id,
            table.c.settle_due_at.is_(None),
            table.c.closed_at.is_not(None),
            table.c.closed_at >= changed_at,
        )
        .values(settle_due_at=table.c.closed_at)
    )


async def clear_settle_due(session: AsyncSession, ticket_id: UUID) -> None:
    table = TicketState.__table__  # type: ignore[attr-defined]
    await session.execute(update(table).where(table.c.ticket_id == ticket_id).values(settle_due_at=None))


async def clear_settle_due_many(session: AsyncSession, ticket_ids: Sequence[UUID]) -> None:
    table = TicketState.__table__  # type: ignore[attr-defined]
    for chunk in chunks(ticket_ids, 1000):
        await session.execute(update(table).where(table.c.ticket_id.in_(chunk)).values(settle_due_at=None))


async def due_closes(session: AsyncSession, *, now: datetime, limit: int) -> list[UUID]:
    rows = await session.scalars(
        select(TicketState.ticket_id)
        .where(col(TicketState.settle_due_at).is_not(None), col(TicketState.settle_due_at) <= now)
        .order_by(col(TicketState.settle_due_at))
        .limit(limit)
    )
    return list(rows.all())


async def unsettled_closes_of(
    session: AsyncSession, organization_ids: Sequence[UUID]
) -> list[tuple[UUID, UUID, datetime]]:
    """(ticket, organization, closed_at) of closes not charged yet."""
    rows = await session.execute(
        select(TicketState.ticket_id, TicketState.organization_id, TicketState.closed_at).where(
            col(TicketState.organization_id).in_(organization_ids),
            col(TicketState.settle_due_at).is_not(None),
        )
    )
    return [(row[0], row[1], row[2]) for row in rows.all()]


async def get_time_entry(
    session: AsyncSession, time_entry_id: UUID, *, for_update: bool
) -> TimeEntryState | None:
    query = select(TimeEntryState).where(col(TimeEntryState.time_entry_id) == time_entry_id)
    if for_update and dialect_of(session) == "postgresql":
        query = query.with_for_update()
    return (await session.scalars(query.execution_options(populate_existing=True))).one_or_none()


async def insert_time_entry(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(insert(TimeEntryState.__table__), [values])  # type: ignore[attr-defined]


async def update_time_entry(session: AsyncSession, time_entry_id: UUID, values: dict[str, Any]) -> None:
    table = TimeEntryState.__table__  # type: ignore[attr-defined]
    await session.execute(update(table).where(table.c.time_entry_id == time_entry_id).values(**values))


async def entries_with_charges(
    session: AsyncSession, ticket_ids: Sequence[UUID]
) -> list[tuple[TimeEntryState, int]]:
    """The tickets' time entries, each with the billed minutes charged for it so far."""
    charged = (
        select(Charge.time_entry_id, func.sum(Charge.minutes).label("charged"))
        .where(col(Charge.ticket_id).in_(ticket_ids), col(Charge.time_entry_id).is_not(None))
        .group_by(col(Charge.time_entry_id))
        .subquery()
    )
    rows = await session.execute(
        select(TimeEntryState, func.coalesce(charged.c.charged, 0))
        .outerjoin(charged, charged.c.time_entry_id == TimeEntryState.time_entry_id)
        .where(col(TimeEntryState.ticket_id).in_(ticket_ids))
        .order_by(col(TimeEntryState.started_at), col(TimeEntryState.time_entry_id))
    )
    return [(entry, int(charged_minutes)) for entry, charged_minutes in rows.all()]


async def minimum_charged(session: AsyncSession, ticket_ids: Sequence[UUID]) -> dict[UUID, int]:
    rows = await session.execute(
        select(Charge.ticket_id, func.sum(Charge.minutes))
        .where(col(Charge.ticket_id).in_(ticket_ids), col(Charge.time_entry_id).is_(None))
        .group_by(col(Charge.ticket_id))
    )
    return {ticket_id: int(total) for ticket_id, total in rows.all()}


async def mark_entries_charged(session: AsyncSession, revisions: dict[UUID, int]) -> None:
    """Clear ``needs_charge`` on entries still at the revision that was charged; an entry a
    concurrent event moved on keeps it, and its next charge takes the difference."""
    if not revisions:
        return
    table = TimeEntryState.__table__  # type: ignore[attr-defined]
    statement = (
        update(table)
        .where(
            and_(
                table.c.time_entry_id == bindparam("entry_id"),
                table.c.revision == bindparam("charged_revision"),
            )
        )
        .values(needs_charge=False)
    )
    await session.execute(
        statement,
        [{"entry_id": entry_id, "charged_revision": revision} for entry_id, revision in revisions.items()],
    )


async def pending_entries_on_closed_tickets(
    session: AsyncSession, organization_ids: Sequence[UUID]
) -> list[tuple[UUID, UUID, datetime]]:
    """(ticket, organization, changed_at) of entries changed since charged whose ticket is closed."""
    rows = await session.execute(
        select(TimeEntryState.ticket_id, TimeEntryState.organization_id, TimeEntryState.changed_at)
        .join(TicketState, col(TicketState.ticket_id) == col(TimeEntryState.ticket_id))
        .where(
            col(TimeEntryState.organization_id).in_(organization_ids),
            col(TimeEntryState.needs_charge),
            col(TicketState.status) == "closed",
            col(TicketState.settle_due_at).is_(None),
        )
    )
    return [(row[0], row[1], row[2]) for row in rows.all()]


# --- the ledgers -----------------------------------------------------------------------------


async def insert_usage(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if rows:
        await session.execute(insert(UsageEntry.__table__), rows)  # type: ignore[attr-defined]


async def insert_charges(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if rows:
        await session.execute(insert(Charge.__table__), rows)  # type: ignore[attr-defined]


async def invoiced_minutes(session: AsyncSession, ticket_id: UUID) -> list[tuple[UUID | None, str, int, int]]:
    """A ticket's invoiced charges summed by (time entry, kind, rate): what each was priced on."""
    rows = await session.execute(
        select(Charge.time_entry_id, Charge.kind, Charge.rate_per_hour_cents, func.sum(Charge.minutes))
        .where(col(Charge.ticket_id) == ticket_id, col(Charge.rate_per_hour_cents).is_not(None))
        .group_by(col(Charge.time_entry_id), col(Charge.kind), col(Charge.rate_per_hour_cents))
    )
    return [(row[0], row[1], int(row[2]), int(row[3])) for row in rows.all()]


async def entry_charges(session: AsyncSession, time_entry_id: UUID | None, ticket_id: UUID) -> list[Charge]:
    """An entry's charges (or a ticket's minimum charges) in the order they were made."""
    condition = (
        col(Charge.time_entry_id) == time_entry_id
        if time_entry_id is not None
        else and_(col(Charge.ticket_id) == ticket_id, col(Charge.time_entry_id).is_(None))
    )
    return list((await session.scalars(select(Charge).where(condition).order_by(col(Charge.id)))).all())


async def allowance_used(
    session: AsyncSession, organization_ids: Sequence[UUID], period_key: str
) -> dict[UUID, int]:
    rows = await session.execute(
        select(Charge.organization_id, func.sum(Charge.minutes))
        .where(
            col(Charge.organization_id).in_(organization_ids),
            col(Charge.period_key) == period_key,
            col(Charge.kind) == ChargeKind.ALLOWANCE,
        )
        .group_by(col(Charge.organization_id))
    )
    return {organization_id: int(total) for organization_id, total in rows.all()}


async def list_usage(
    session: AsyncSession,
    organization_id: UUID,
    *,
    starts_at: datetime | None,
    ends_at: datetime | None,
    limit: int,
    after: UUID | None,
) -> Sequence[UsageEntry]:
    query = (
        select(UsageEntry)
        .where(col(UsageEntry.organization_id) == organization_id)
        .order_by(col(UsageEntry.id))
        .limit(limit)
    )
    if starts_at is not None and ends_at is not None:
        query = query.where(col(UsageEntry.started_at) >= starts_at, col(UsageEntry.started_at) < ends_at)
    if after is not None:
        query = query.where(col(UsageEntry.id) > after)
    return (await session.scalars(query)).all()


async def usage_by_entry(
    session: AsyncSession, organization_id: UUID, starts_at: datetime, ends_at: datetime
) -> list[Any]:
    """Net logged minutes per (time entry, billable) of work started in the window."""
    rows = await session.execute(
        select(
            UsageEntry.time_entry_id,
            UsageEntry.ticket_id,
            UsageEntry.ticket_number,
            UsageEntry.billable,
            func.sum(UsageEntry.minutes).label("minutes"),
            UsageEntry.agent_id,
            func.min(UsageEntry.started_at).label("started_at"),
        )
        .where(
            col(UsageEntry.organization_id) == organization_id,
            col(UsageEntry.started_at) >= starts_at,
            col(UsageEntry.started_at) < ends_at,
        )
        .group_by(
            col(UsageEntry.time_entry_id),
            col(UsageEntry.ticket_id),
            col(UsageEntry.ticket_number),
            col(UsageEntry.billable),
            col(UsageEntry.agent_id),
        )
        .order_by(col(UsageEntry.ticket_number), col(UsageEntry.time_entry_id))
    )
    return list(rows.all())


async def charged_between(
    session: AsyncSession, organization_id: UUID, starts_at: datetime, ends_at: datetime
) -> int:
    value = await session.scalar(
        select(func.sum(Charge.minutes)).where(
            col(Charge.organization_id) == organization_id,
            col(Charge.charged_at) >= starts_at,
            col(Charge.charged_at) < ends_at,
        )
    )
    return int(value or 0)


# --- invoices --------------------------------------------------------------------------------


async def allocate_invoice_numbers(session: AsyncSession, year: int, count: int) -> list[int]:
    """``count`` consecutive numbers of ``year``. The counter row stays locked until commit,
    so concurrent issuers queue behind it and a rollback gives the numbers back."""
    table = InvoiceCounter.__table__  # type: ignore[attr-defined]
    bump = (
        update(table)
        .where(table.c.year == year)
        .values(last_number=table.c.last_number + count)
        .returning(table.c.last_number)
    )
    last = (await session.execute(bump)).scalar()
    if last is None:
        create = insert_ignoring_conflicts(table, dialect_of(session), "year")
        await session.execute(create.values(year=year, last_number=0))
        last = (await session.execute(bump)).scalar_one()
    return list(range(last - count + 1, last + 1))


async def insert_invoices(
    session: AsyncSession, invoices: list[dict[str, Any]], lines: list[dict[str, Any]]
) -> None:
    if invoices:
        await session.execute(insert(Invoice.__table__), invoices)  # type: ignore[attr-defined]
    if lines:
        await session.execute(insert(InvoiceLine.__table__), lines)  # type: ignore[attr-defined]


async def get_invoice(session: AsyncSession, invoice_id: UUID, *, for_update: bool = False) -> Invoice | None:
    query = select(Invoice).where(col(Invoice.id) == invoice_id)
    if for_update and dialect_of(session) == "postgresql":
        query = query.with_for_update()
    return (await session.scalars(query.execution_options(populate_existing=True))).one_or_none()


async def invoice_lines(session: AsyncSession, invoice_ids: Sequence[UUID]) -> dict[UUID, list[InvoiceLine]]:
    rows = await session.scalars(
        select(InvoiceLine)
        .where(col(InvoiceLine.invoice_id).in_(invoice_ids))
        .order_by(col(InvoiceLine.invoice_id), col(InvoiceLine.position))
    )
    result: dict[UUID, list[InvoiceLine]] = {invoice_id: [] for invoice_id in invoice_ids}
    for line in rows.all():
        result[line.invoice_id].append(line)
    return result


async def list_invoices(
    session: AsyncSession,
    *,
    scope: frozenset[UUID] | None,
    organization_id: UUID | None,
    status: str | None,
    ticket_id: UUID | None,
    limit: int,
    before: UUID | None,
) -> Sequence[Invoice]:
    query = select(Invoice).order_by(col(Invoice.id).desc()).limit(limit)
    if scope is not None:
        query = query.where(col(Invoice.organization_id).in_(scope))
    if organization_id is not None:
        query = query.where(col(Invoice.organization_id) == organization_id)
    if status is not None:
        query = query.where(col(Invoice.status) == status)
    if ticket_id is not None:
        query = query.where(col(Invoice.ticket_id) == ticket_id)
    if before is not None:
        query = query.where(col(Invoice.id) < before)
    return (await session.scalars(query)).all()


async def invoiced_between(
    session: AsyncSession, organization_id: UUID, starts_at: datetime, ends_at: datetime
) -> list[tuple[str, int]]:
    rows = await session.execute(
        select(Invoice.currency, func.sum(Invoice.total_cents))
        .where(
            col(Invoice.organization_id) == organization_id,
            col(Invoice.issued_at) >= starts_at,
            col(Invoice.issued_at) < ends_at,
            col(Invoice.status) != "void",
        )
        .group_by(col(Invoice.currency))
    )
    return [(currency, int(total)) for currency, total in rows.all()]


# --- notices ---------------------------------------------------------------------------------


async def claim_notices(session: AsyncSession, notices: list[dict[str, Any]]) -> set[tuple[UUID, str, str]]:
    """Keep notices (rows of ``billing_notice`` without ``sent_at``), each the first time its
    (organization, notice, scope) comes; returns the keys claimed now (not before)."""
    if not notices:
        return set()
    table = Notice.__table__  # type: ignore[attr-defined]
    statement = insert_ignoring_conflicts(table, dialect_of(session), "organization_id", "notice", "scope")
    now = utcnow()
    unique = {(row["organization_id"], row["notice"], row["scope"]): row for row in notices}
    claimed: set[tuple[UUID, str, str]] = set()
    for chunk in chunks(sorted(unique), 1000):
        rows = [{**unique[key], "sent_at": now} for key in chunk]
        result = await session.execute(
            statement.values(rows).returning(table.c.organization_id, table.c.notice, table.c.scope)
        )
        claimed.update((row[0], row[1], row[2]) for row in result.all())
    return claimed


async def list_notices(
    session: AsyncSession,
    *,
    scope: frozenset[UUID] | None,
    organization_id: UUID | None,
    period_key: str | None,
    kind: str | None,
    limit: int,
) -> list[Notice]:
    """Notices oldest first (by when they were sent; 80 % before 100 %, low before exhausted)."""
    query = (
        select(Notice)
        .order_by(col(Notice.sent_at), col(Notice.notice).desc(), col(Notice.scope))
        .limit(limit)
    )
    if scope is not None:
        query = query.where(col(Notice.organization_id).in_(scope))
    if organization_id is not None:
        query = query.where(col(Notice.organization_id) == organization_id)
    if period_key is not None:
        query = query.where(col(Notice.period_key) == period_key)
    if kind is not None:
        query = query.where(col(Notice.notice) == kind)
    return list((await session.scalars(query)).all())


def chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def tickets_by_id(session: AsyncSession, ticket_ids: Sequence[UUID]) -> list[Any]:
    table = TicketState.__table__  # type: ignore[attr-defined]
    rows = await session.execute(
        select(
            table.c.ticket_id, table.c.organization_id, table.c.number, table.c.closed_at, table.c.status
        ).where(table.c.ticket_id.in_(ticket_ids))
    )
    return list(rows.all())


async def entry_rows_with_charges(
    session: AsyncSession, ticket_ids: Sequence[UUID], *, pending_only: bool = False
) -> list[Any]:
    """Plain rows (no ORM objects: the period close reads many) of the tickets' entries (only
    those changed since charged, with ``pending_only``) with the billed minutes charged for each."""
    entries = TimeEntryState.__table__  # type: ignore[attr-defined]
    charges = Charge.__table__  # type: ignore[attr-defined]
    charged = (
        select(charges.c.time_entry_id, func.sum(charges.c.minutes).label("charged"))
        .where(charges.c.ticket_id.in_(ticket_ids), charges.c.time_entry_id.is_not(None))
        .group_by(charges.c.time_entry_id)
        .subquery()
    )
    rows = await session.execute(
        select(
            entries.c.time_entry_id,
            entries.c.ticket_id,
            entries.c.revision,
            entries.c.minutes,
            entries.c.billable,
            entries.c.deleted,
            entries.c.needs_charge,
            # Only a pending entry's change time matters (and decoding timestamps is not free).
            case((entries.c.needs_charge, entries.c.changed_at), else_=None).label("changed_at"),
            func.coalesce(charged.c.charged, 0).label("charged"),
        )
        .outerjoin(charged, charged.c.time_entry_id == entries.c.time_entry_id)
        .where(entries.c.ticket_id.in_(ticket_ids), *([entries.c.needs_charge] if pending_only else []))
        .order_by(entries.c.ticket_id, entries.c.started_at, entries.c.time_entry_id)
    )
    return list(rows.all())
