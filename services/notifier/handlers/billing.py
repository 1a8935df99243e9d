"""Billing's mail, from the accounting address: invoices (the PDF fetched from the event's
``pdf_url`` when sent), allowance and prepaid-block notices."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from services.notifier import repository as repo
from services.notifier.context import Notifier
from services.notifier.links import TicketRef
from services.notifier.models import (
    NotificationKind,
)
from services.notifier.recording import Mail, queue_email
from shared import events as ev

log = logging.getLogger(__name__)


def money(amount: Decimal, currency: str) -> str:
    return f"{currency} {amount:,.2f}"


def hours(minutes: int) -> str:
    whole, rest = divmod(minutes, 60)
    return f"{whole} h {rest:02d} min" if rest else f"{whole} h"


async def _accounting_mail(
    session: AsyncSession,
    notifier: Notifier,
    event: ev.Event,
    *,
    kind: NotificationKind,
    dedupe_key: str,
    recipient: str | None,
    organization_id: UUID,
    ticket_id: UUID | None,
    context: dict[str, Any],
    attachments: Sequence[dict[str, Any]] = (),
) -> None:
    if recipient is None:
        # No billing address on the account: accounting gets it to forward (nothing goes unsent).
        log.warning(
            "%s for organization %s has no billing address: sent to accounting", event.type, organization_id
        )
        recipient = notifier.settings.accounting_address
    view = await repo.get_ticket_view(session, ticket_id) if ticket_id else None
    ticket = (
        TicketRef(
            id=view.ticket_id, number=view.number, subject=view.subject, organization_id=organization_id
        )
        if view
        else None
    )
    await queue_email(
        session,
        notifier,
        Mail(
            dedupe_key=dedupe_key,
            event_type=event.type,
            kind=kind,
            recipient=recipient,
            recipient_name=None,
            ticket=ticket,
            customer_facing=False,  # replies go to accounting (the From), not into the ticket
            context=context,
            from_name=f"{notifier.settings.company_name} Accounting",
            from_address=notifier.settings.accounting_address,
            organization_id=organization_id,
            attachments=attachments,
        ),
    )


async def on_invoice_issued(session: AsyncSession, notifier: Notifier, event: ev.Event) -> None:
    p = ev.payload_of(event, ev.InvoiceIssuedV1)
    await _accounting_mail(
        session,
        notifier,
        event,
        kind=NotificationKind.INVOICE,
        dedupe_key=f"invoice:{p.invoice_id}",
        recipient=p.bill_to_email,
        organization_id=p.organization_id,
        ticket_id=p.ticket_id,
        context={
            "organization": p.organization_name,
            "invoice": {
                "number": p.number,
                "total": money(p.total, p.currency),
                "due_on": f"{p.due_date:%B} {p.due_date.day}, {p.due_date.year}",
                "payment_instructions": p.payment_instructions,
                "ticket_numbers": p.ticket_numbers,
                "period": p.period,
                "lines": [
                    {
                        "description": line.description,
                        "ticket_number": line.ticket_number,
                        "time": hours(line.minutes),
                        "amount": money(line.amount, p.currency),
                    }
                    for line in p.lines
                ],
            },
        },
        attachments=[
            {
                "kind": "invoice_pdf",
                "url": p.pdf_url,
                "invoice_id": str(p.invoice_id),
                "filename": f"{p.number}.pdf",
            }
        ],
    )


async def on_allowance_threshold(session: AsyncSession, notifier: Notifier, event: ev.Event) -> None:
    p = ev.payload_of(event, ev.AllowanceThresholdReachedV1)
    await _accounting_mail(
        session,
        notifier,
        event,
        kind=NotificationKind.BILLING_NOTICE,
        dedupe_key=f"allowance:{p.organization_id}:{p.period}:{p.threshold}",
        recipient=p.billing_email,
        organization_id=p.organization_id,
        ticket_id=None,
        context={
            "notice": {
                "kind": "allowance",
                "organization": p.organization_name,
                "period": p.period,
                "threshold": p.threshold,
                "allowance": hours(p.allowance_minutes),
                "used": hours(p.used_minutes),
                "rate": money(p.overage_rate_per_hour, p.currency),
            }
        },
    )


async def on_block_balance(session: AsyncSession, notifier: Notifier, event: ev.Event) -> None:
    p = ev.payload_of(event, ev.BlockBalanceV1)
    await _accounting_mail(
        session,
        notifier,
        event,
        kind=NotificationKind.BILLING_NOTICE,
        dedupe_key=f"{event.type}:{p.organization_id}:{p.newest_block_id}",
        recipient=p.billing_email,
        organization_id=p.organization_id,
        ticket_id=None,
        context={
            "notice": {
                "kind": "block_exhausted" if event.type == ev.EventType.BLOCK_EXHAUSTED else "block_low",
                "organization": p.organization_name,
                "purchased": hours(p.purchased_minutes),
                "remaining": hours(p.remaining_minutes),
                "low_threshold_percent": p.low_threshold_percent,
                "rate": money(p.overage_rate_per_hour, p.currency),
            }
        },
    )
