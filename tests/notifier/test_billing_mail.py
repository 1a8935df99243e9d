"""Billing's events become mail from the accounting address; an invoice carries its PDF, fetched
from billing's API (an in-process stand-in here) when the mail is sent."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from uuid import UUID, uuid4

import httpx
from fastapi import FastAPI, Response

from services.notifier import repository as repo
from services.notifier.delivery import sweep
from services.notifier.models import DeliveryState
from shared import events as ev
from shared.http import http_client
from tests.fixtures.events import (
    allowance_threshold_reached,
    block_exhausted,
    email_bounced,
    invoice_issued,
)
from tests.notifier.conftest import Env, TicketStory, organization
from tests.notifier.test_email_flow import attachments, parts

ORG = organization(sla_signed=True)
PDF = b"%PDF-1.4 invoice INV-2026-000001"


def billing_stub(answers: list[int]) -> tuple[FastAPI, list[str]]:
    app, asked = FastAPI(), []

    @app.get("/api/v1/billing/invoices/{invoice_id}/pdf")
    async def invoice_pdf(invoice_id: UUID) -> Response:
        asked.append(str(invoice_id))
        status = answers.pop(0) if len(answers) > 1 else answers[0]
        return Response(PDF if status == 200 else b"busy", status_code=status, media_type="application/pdf")

    return app, asked


def invoice_event(ticket_id: UUID, invoice_id: UUID, bill_to: str | None = "ap@acme.test") -> ev.Event:
    return invoice_issued(
        invoice_id=invoice_id,
        organization_id=ORG.id,
        ticket_id=ticket_id,
        issued_at=datetime(2025, 3, 4, 20, tzinfo=UTC),
        invoice_date=date(2025, 3, 4),
        due_date=date(2025, 4, 3),
        bill_to_email=bill_to,
    )


async def test_an_invoice_is_mailed_from_accounting_with_its_pdf_once_billing_answers(env: Env) -> None:
    stub, asked = billing_stub([503, 200])
    await env.notifier.billing_client.aclose()
    env.notifier.billing_client = http_client(
        base_url="http://billing.test", transport=httpx.ASGITransport(app=stub)
    )
    story = TicketStory(org=ORG)
    invoice_id = uuid4()
    await env.deliver(story.created())
    issued = invoice_event(story.ticket_id, invoice_id)
    await env.deliver(issued)

    _ack, invoice = await env.notifications()
    assert invoice.state == DeliveryState.PENDING and "503" in (invoice.last_error or ""), "billing was busy"
    env.clock.advance(seconds=31)
    await sweep(env.notifier, grace=timedelta(0))
    await env.run_worker()
    await env.deliver(issued)  # a repeated event sends nothing more

    _ack_mail, mail = env.mail()
    assert mail["To"] == "ap@acme.test"
    assert "accounting@helpdesk.test" in str(mail["From"])
    assert mail["Subject"] == "[TKT-1] Invoice INV-2026-000001 from Helpdesk Consulting"
    assert mail["Reply-To"] is None
    text, html = parts(mail)
    for snippet in ("USD 150.00", "April 3, 2025", "IBAN XX00 0000", "Printer repair [TKT-1]: 1 h 30 min"):
        assert snippet in text
    assert "USD 150.00" in html
    assert attachments(mail) == [("INV-2026-000001.pdf", "application/pdf", PDF)]
    assert asked == [str(invoice_id)] * 2


async def test_an_invoice_without_a_billing_address_goes_to_accounting(env: Env) -> None:
    stub, _asked = billing_stub([200])
    await env.notifier.billing_client.aclose()
    env.notifier.billing_client = http_client(
        base_url="http://billing.test", transport=httpx.ASGITransport(app=stub)
    )
    story = TicketStory(org=ORG)
    await env.deliver(story.created())
    await env.deliver(invoice_event(story.ticket_id, uuid4(), bill_to=None))
    await env.run_worker()
    _ack_mail, mail = env.mail()
    assert mail["To"] == "accounting@helpdesk.test", (
        "an invoice nobody can receive is forwarded, never dropped"
    )


async def test_allowance_and_block_notices_and_bounces(env: Env) -> None:
    await env.deliver(
        allowance_threshold_reached(
            organization_id=ORG.id,
            organization_name="Globex",
            billing_email="billing@globex.test",
            threshold=80,
            used_minutes=480,
            allowance_minutes=600,
            overage_rate_per_hour=Decimal("120.00"),
        ),
        block_exhausted(
            organization_id=ORG.id,
            organization_name="Initech",
            billing_email="billing@initech.test",
            remaining_minutes=0,
            purchased_minutes=1200,
        ),
        email_bounced(recipients=["Gone@Acme.test"], permanent=True),
    )
    by_recipient = {str(m["To"]): m for m in env.mail()}
    notice = by_recipient["billing@globex.test"]
    assert notice["Subject"] == "Your support allowance for 2026-11: 80% used"
    assert "8 h of the 10 h" in parts(notice)[0] and "USD 120.00 per hour" in parts(notice)[0]
    exhausted = by_recipient["billing@initech.test"]
    assert exhausted["Subject"] == "Your prepaid support hours are used up"
    async with env.runtime.sessions() as session:
        suppression = await repo.get_suppression(session, "gone@acme.test")
    assert suppression is not None and "user unknown" in suppression.reason
