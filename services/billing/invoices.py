"""Invoices: numbered gap-free per year, totalled to the cent and stored together with their
``invoice.issued`` event, all dated by the instant they are for (a ticket's close, a period's
end); what the API shows of one, paying and voiding it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from services.billing import repository as repo
from services.billing.errors import InvoiceNotFound, InvoiceStateConflict
from services.billing.models import (
    BillingAccount,
    BillingPlan,
    Invoice,
    InvoiceKind,
    InvoiceLine,
    InvoiceStatus,
)
from services.billing.money import cents, from_cents, invoice_totals
from services.billing.periods import local_date
from services.billing.recipients import account_recipient
from services.billing.schemas import InvoiceLinePublic, InvoicePublic
from services.billing.settings import Settings
from shared import events as ev
from shared.auth import require_admin
from shared.clock import utcnow
from shared.ids import new_id
from shared.principal import Principal
from shared.uow import UnitOfWork

API = "/api/v1/billing"


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


async def issue_invoices(uow: UnitOfWork, settings: Settings, drafts: list[InvoiceDraft]) -> list[UUID]:
    """Number, total and store invoices, and record an ``invoice.issued`` for each — all in the
    caller's transaction, so the numbers, the invoices and the events commit (or vanish) together.
    Each is dated by its own instant in ``BILLING_ISSUER_TIMEZONE`` (date, due date, year)."""
    if not drafts:
        return []
    session = uow.session
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
            "bill_to_email": account_recipient(draft.account, draft.contact_email).address,
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
    await uow.emit_many(events)
    return [row["id"] for row in invoices]


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
