from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import Response

from services.billing import invoices as books
from services.billing import repository as repo
from services.billing.deps import Admin, BillingSettings, Now, Reader, Uow
from services.billing.models import InvoiceStatus
from services.billing.pdf import render_invoice
from services.billing.schemas import InvoicePublic, MarkPaid, VoidInvoice
from shared.pagination import Page, decode_cursor, page_of
from shared.problems import problem_responses

router = APIRouter(prefix="/invoices", tags=["invoices"])


@router.get("", responses=problem_responses(400, 401, 422))
async def list_invoices(
    uow: Uow,
    principal: Reader,
    settings: BillingSettings,
    organization_id: UUID | None = None,
    status: InvoiceStatus | None = None,
    ticket_id: UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> Page[InvoicePublic]:
    """Invoices the caller may see, newest first."""
    invoices = await repo.list_invoices(
        uow.session,
        scope=principal.org_scope(),
        organization_id=organization_id,
        status=status.value if status else None,
        ticket_id=ticket_id,
        limit=limit + 1,
        before=decode_cursor(cursor),
    )
    lines = await repo.invoice_lines(uow.session, [invoice.id for invoice in invoices])
    items = [books.invoice_public(settings, invoice, lines[invoice.id]) for invoice in invoices]
    return page_of(items, [invoice.id for invoice in invoices], limit)


async def _invoice(uow: Uow, principal: Reader, settings: BillingSettings, invoice_id: UUID) -> InvoicePublic:
    invoice = await books.visible_invoice(uow.session, principal, invoice_id)
    lines = await repo.invoice_lines(uow.session, [invoice.id])
    return books.invoice_public(settings, invoice, lines[invoice.id])


@router.get("/{invoice_id}", responses=problem_responses(401, 404, 422))
async def get_invoice(
    invoice_id: UUID, uow: Uow, principal: Reader, settings: BillingSettings
) -> InvoicePublic:
    return await _invoice(uow, principal, settings, invoice_id)


@router.get(
    "/{invoice_id}/pdf",
    responses={
        200: {"content": {"application/pdf": {}}, "description": "The invoice as PDF"},
        **problem_responses(401, 404, 422),
    },
    response_class=Response,
)
async def invoice_pdf(invoice_id: UUID, uow: Uow, principal: Reader, settings: BillingSettings) -> Response:
    """The invoice as a PDF document (the notifier attaches it to the invoice email)."""
    invoice = await books.visible_invoice(uow.session, principal, invoice_id)
    lines = await repo.invoice_lines(uow.session, [invoice.id])
    return Response(
        render_invoice(settings, invoice, lines[invoice.id]),
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{invoice.number}.pdf"'},
    )


@router.post("/{invoice_id}/mark-paid", responses=problem_responses(401, 403, 404, 409, 422))
async def mark_paid(
    invoice_id: UUID,
    uow: Uow,
    principal: Admin,
    settings: BillingSettings,
    now: Now,
    body: MarkPaid | None = None,
) -> InvoicePublic:
    """Record payment (admins). Paying a paid invoice again changes nothing; a void one is 409."""
    paid_at = body.paid_at if body is not None and body.paid_at is not None else now
    await books.mark_paid(uow.session, principal, invoice_id, paid_at=paid_at)
    await uow.commit()
    return await _invoice(uow, principal, settings, invoice_id)


@router.post("/{invoice_id}/void", responses=problem_responses(401, 403, 404, 409, 422))
async def void(
    invoice_id: UUID,
    body: VoidInvoice,
    uow: Uow,
    principal: Admin,
    settings: BillingSettings,
    now: Now,
) -> InvoicePublic:
    """Cancel an unpaid invoice, saying why (admins). Its number stays used; the time it
    charged is not billed again."""
    await books.void_invoice(uow.session, principal, invoice_id, reason=body.reason, now=now)
    await uow.commit()
    return await _invoice(uow, principal, settings, invoice_id)
