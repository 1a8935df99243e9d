"""S7 — billing by tier.

* Hourly (Acme): closing Jane's ticket makes accounting email an invoice — its number, the
  ticket number, a line per time entry rounded up to the plan's 15 minutes, the total and how
  to pay — with the invoice as PDF.
* Agreement (Globex, 10 h a month): closes draw the month down; crossing 80 % sends one notice,
  crossing 100 % one more; the overage is invoiced when the month is closed (on the Friday, in
  April), and April starts fresh.
* Prepaid block (Initech, 20 h): closes draw the block down; "running low" and "used up" go
  out once each (time beyond the block is invoiced at the overage rate).
* Delivering an event again (the outbox relay re-publishing it) changes no balance and sends
  no second mail.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from tests.e2e.cast import Cast, wait_until
from tests.e2e.conftest import JANE, ClosedTicket, EmailedTicket
from tests.e2e.mailbox import Mail, where
from tests.e2e.world import Scene

pytestmark = pytest.mark.stack

ACCOUNTING = "accounting@helpdesk.test"
PAYMENT = "Pay by bank transfer to Helpdesk Consulting, IBAN US00 0000 0000 0000, quoting the invoice number."


def invoices_of(scene: Scene, cast: Cast, organization: str) -> list[dict[str, Any]]:
    page = cast.api(scene, "admin").get(
        "/api/v1/billing/invoices", params={"organization_id": cast.organizations[organization], "limit": 200}
    )
    items: list[dict[str, Any]] = page["items"]
    return items


def account_of(scene: Scene, cast: Cast, organization: str) -> dict[str, Any]:
    account: dict[str, Any] = cast.api(scene, "admin").get(
        f"/api/v1/billing/accounts/{cast.organizations[organization]}"
    )
    return account


def work_and_close(
    scene: Scene, cast: Cast, organization: str, contact: str, subject: str, minutes: int
) -> dict[str, Any]:
    """A ticket for ``contact``, ``minutes`` of Bob's time on it, closed."""
    admin, bob = cast.api(scene, "admin"), cast.api(scene, "bob")
    ticket: dict[str, Any] = admin.post(
        "/api/v1/tickets",
        json={
            "contact": {"email": contact},
            "subject": subject,
            "description": f"{subject}.",
            "urgency": "low",
            "channel": "phone",
        },
    )
    assert ticket["organization_id"] == cast.organizations[organization]
    bob.post(
        f"/api/v1/tickets/{ticket['id']}/time-entries", json={"minutes": minutes, "description": subject}
    )
    bob.post(f"/api/v1/tickets/{ticket['id']}/status", expect=200, json={"status": "closed"})
    return ticket


# --- hourly ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def acme_invoice(tuesday: Scene, cast: Cast, acme_closed: ClosedTicket) -> Mail:
    return tuesday.mailbox.one(acme_closed.since, timeout=30, to=JANE, kind="invoice")


def test_hourly_customer_gets_an_invoice_from_accounting(
    tuesday: Scene, cast: Cast, jane_ticket: EmailedTicket, acme_closed: ClosedTicket, acme_invoice: Mail
) -> None:
    (invoice,) = invoices_of(tuesday, cast, "acme")
    number = invoice["number"]
    assert number.startswith("INV-2026-")
    assert (invoice["kind"], invoice["ticket_number"], invoice["status"]) == (
        "ticket",
        jane_ticket.number,
        "issued",
    )
    # 50 minutes and 40 minutes, each rounded up to the plan's 15: 60 + 45 minutes at USD 150/h.
    lines = sorted((line["minutes"], Decimal(line["amount"])) for line in invoice["lines"])
    assert lines == [(45, Decimal("112.50")), (60, Decimal("150.00"))]
    assert Decimal(invoice["total"]) == Decimal("262.50")

    mail = acme_invoice
    assert (mail.sender, mail.sender_name) == (ACCOUNTING, "Helpdesk Consulting Accounting")
    assert number in mail.subject and jane_ticket.number in mail.subject
    text = mail.text
    assert f"invoice {number} for Acme Corp" in text and f"(tickets {jane_ticket.number})" in text
    assert f"Diagnosed the printer remotely [{jane_ticket.number}]: 1 h, USD 150.00" in text
    assert f"[{jane_ticket.number}]: 0 h 45 min, USD 112.50" in text
    assert "Total: USD 262.50" in text
    assert f"How to pay: {PAYMENT}" in text
    assert mail.header("Reply-To") is None  # questions go to accounting, not into the ticket

    assert mail.attachment("application/pdf").filename == f"{number}.pdf"
    pdf = " ".join(mail.pdf_text().split())
    for expected in (number, jane_ticket.number, "Acme Corp", "262.50", "150.00", "112.50", "IBAN US00"):
        assert expected in pdf, f"{expected!r} not in the PDF: {pdf[:1500]}"


# --- support agreement ------------------------------------------------------------------------


@dataclass(frozen=True)
class Month:
    tickets: list[dict[str, Any]]
    notices: list[Mail]


@dataclass(frozen=True)
class March:
    globex: Month
    initech: Month


@pytest.fixture(scope="session")
def march(tuesday: Scene, cast: Cast) -> March:
    """The rest of March for the other tiers, worked at once (billing settles closes a few
    seconds after they happen, so the waits overlap):

    * Globex: 495, 60 and 120 minutes on three tickets — 675 of its 600 minutes;
    * Initech: 990 minutes of its 1,200-minute block, then 240 and 15 more."""
    blocks = cast.api(tuesday, "admin").get(
        f"/api/v1/billing/accounts/{cast.organizations['initech']}/blocks"
    )
    assert [(b["minutes"], b["remaining_minutes"]) for b in blocks] == [(1200, 1200)]
    since = tuesday.mailbox.mark()
    globex = [
        work_and_close(tuesday, cast, "globex", "pat@globex.test", "Migrate the file server", 495),
        work_and_close(tuesday, cast, "globex", "pat@globex.test", "Add two mailboxes", 60),
        work_and_close(tuesday, cast, "globex", "kim@globex.test", "Replace the core switch", 120),
    ]
    # Billing charges closes in the order they happened, each in its own transaction.
    initech = [
        work_and_close(tuesday, cast, "initech", "milton@initech.test", "Set up the new printer", 990),
        work_and_close(tuesday, cast, "initech", "milton@initech.test", "Recover a deleted file", 240),
        work_and_close(tuesday, cast, "initech", "peter@initech.test", "Reset a password", 15),
    ]
    tuesday.mailbox.wait_for(since, timeout=30, count=2, to="accounts@globex.test", kind="billing_notice")
    tuesday.mailbox.wait_for(since, timeout=30, count=2, to="accounts@initech.test", kind="billing_notice")
    tuesday.mailbox.wait_for(since, timeout=30, count=2, to="accounts@initech.test", kind="invoice")
    wait_until(
        lambda: account_of(tuesday, cast, "globex")["allowance"]["used_minutes"] == 675, what="all drawn"
    )
    return March(
        Month(globex, tuesday.mailbox.find(since, to="accounts@globex.test", kind="billing_notice")),
        Month(initech, tuesday.mailbox.find(since, to="accounts@initech.test", kind="billing_notice")),
    )


@pytest.fixture(scope="session")
def globex_march(march: March) -> Month:
    return march.globex


@pytest.fixture(scope="session")
def initech_block(march: March) -> Month:
    return march.initech


def test_agreement_sends_one_notice_at_80_and_one_at_100_percent(
    tuesday: Scene, cast: Cast, globex_march: Month
) -> None:
    account = account_of(tuesday, cast, "globex")
    assert account["plan"]["kind"] == "agreement" and account["plan"]["allowance_minutes"] == 600
    assert account["allowance"] == {
        "period": "2026-03",
        "allowance_minutes": 600,
        "used_minutes": 675,
        "remaining_minutes": -75,  # 75 minutes beyond the allowance: the month's overage
    }
    eighty = [m for m in globex_march.notices if "80% used" in m.subject]
    hundred = [m for m in globex_march.notices if "used up" in m.subject]
    assert len(eighty) == 1 and len(hundred) == 1, globex_march.notices
    assert eighty[0].subject == "Your support allowance for 2026-03: 80% used"
    assert "10 h included in its support agreement for 2026-03" in eighty[0].text
    assert hundred[0].subject == "Your support allowance for 2026-03 is used up"
    assert "billed at USD 120.00 per hour with the period's closing invoice" in hundred[0].text
    for notice in globex_march.notices:
        assert (notice.sender, notice.sender_name) == (ACCOUNTING, "Helpdesk Consulting Accounting")
    # No more notices for the month, and no invoice before the month is closed.
    tuesday.mailbox.assert_none(0, 1.0, to="accounts@globex.test", kind="invoice")
    assert len(tuesday.mailbox.find(to="accounts@globex.test", kind="billing_notice")) == 2
    assert invoices_of(tuesday, cast, "globex") == []


# --- prepaid block ------------------------------------------------------------------------------


def test_prepaid_block_sends_low_and_exhausted_once_each(
    tuesday: Scene, cast: Cast, initech_block: Month
) -> None:
    subjects = [m.subject for m in initech_block.notices]
    assert subjects == [
        "Your prepaid support hours are running low",
        "Your prepaid support hours are used up",
    ]
    low, exhausted = initech_block.notices
    assert "has 3 h 30 min left of its 20 h prepaid support block (under 20%)" in low.text
    assert "has used all 20 h of its prepaid support block" in exhausted.text
    assert "billed at USD 150.00 per hour" in exhausted.text
    (block,) = cast.api(tuesday, "admin").get(
        f"/api/v1/billing/accounts/{cast.organizations['initech']}/blocks"
    )
    assert (block["used_minutes"], block["remaining_minutes"]) == (1200, 0)
    # What did not fit: 30 minutes of the second ticket, and all 15 of the third, invoiced.
    overage = sorted(
        (inv["ticket_number"], [(line["minutes"], Decimal(line["amount"])) for line in inv["lines"]])
        for inv in invoices_of(tuesday, cast, "initech")
    )
    numbers = [t["number"] for t in initech_block.tickets]
    assert overage == sorted(
        [(numbers[1], [(30, Decimal("75.00"))]), (numbers[2], [(15, Decimal("37.50"))])]
    ), overage


# --- a duplicate delivery changes nothing ------------------------------------------------------


def test_replaying_events_changes_no_balance_and_sends_no_mail(
    tuesday: Scene,
    cast: Cast,
    jane_ticket: EmailedTicket,
    acme_invoice: Mail,
    globex_march: Month,
    initech_block: Month,
) -> None:
    backstage = tuesday.backstage
    before = {
        "acme": invoices_of(tuesday, cast, "acme"),
        "initech": invoices_of(tuesday, cast, "initech"),
        "globex": account_of(tuesday, cast, "globex")["allowance"],
        "initech_block": account_of(tuesday, cast, "initech")["prepaid_remaining_minutes"],
    }
    since = tuesday.mailbox.mark()
    initech = initech_block.tickets[0]["id"]
    replayed = [
        # Jane's ticket closed (to triage, the notifier, billing), and its time entries.
        *backstage.events("ticket_api", type="ticket.closed", subject=f"ticket:{jane_ticket.id}"),
        *[
            e
            for e in backstage.events("ticket_api", type="time_entry.logged")
            if e.data["ticket_id"] == jane_ticket.id
        ],
        # A Globex close and time entry, and Initech's.
        *backstage.events(
            "ticket_api", type="ticket.closed", subject=f"ticket:{globex_march.tickets[0]['id']}"
        ),
        *[
            e
            for e in backstage.events("ticket_api", type="time_entry.logged")
            if e.data["ticket_id"] == initech
        ],
        # What billing said: the invoices, the allowance notices, the block notices.
        *backstage.events("billing", type="invoice.issued"),
        *backstage.events("billing", type="allowance.threshold_reached"),
        *backstage.events("billing", type="block.low"),
        *backstage.events("billing", type="block.exhausted"),
    ]
    types = {event.type for event in replayed}
    assert types >= {
        "ticket.closed",
        "time_entry.logged",
        "invoice.issued",
        "allowance.threshold_reached",
        "block.low",
        "block.exhausted",
    }, types
    answers = backstage.replay(replayed)
    for event in replayed:
        assert set(answers[event.id].values()) == {"duplicate"}, (event.type, answers[event.id])
    after = {
        "acme": invoices_of(tuesday, cast, "acme"),
        "initech": invoices_of(tuesday, cast, "initech"),
        "globex": account_of(tuesday, cast, "globex")["allowance"],
        "initech_block": account_of(tuesday, cast, "initech")["prepaid_remaining_minutes"],
    }
    assert after == before
    customers = (JANE, "accounts@globex.test", "accounts@initech.test")
    tuesday.mailbox.assert_none(since, 1.0, *(where(to=customer) for customer in customers))


# --- the month is over ------------------------------------------------------------------------


def test_the_period_close_invoices_the_overage_once_and_april_starts_fresh(
    globex_march: Month, friday: Scene, cast: Cast
) -> None:
    """On Friday, April 3 March is over: closing it invoices Globex's 75 minutes beyond its
    allowance at the agreement's overage rate — once, however often the close runs."""
    admin = cast.api(friday, "admin")
    since = friday.mailbox.mark()
    report = admin.post("/api/v1/billing/periods/close", expect=200)
    assert report["finished"] is True and report["overage_invoices"] == 1, report
    (invoice,) = invoices_of(friday, cast, "globex")
    assert (invoice["kind"], invoice["period"], invoice["ticket_id"]) == ("period_overage", "2026-03", None)
    assert [(line["minutes"], Decimal(line["rate_per_hour"])) for line in invoice["lines"]] == [
        (75, Decimal("120.00"))
    ]
    assert Decimal(invoice["total"]) == Decimal("150.00")

    mail = friday.mailbox.one(since, timeout=30, to="accounts@globex.test", kind="invoice")
    assert mail.sender == ACCOUNTING
    assert mail.subject == f"Invoice {invoice['number']} from Helpdesk Consulting"
    assert f"invoice {invoice['number']} for Globex Corporation, support period 2026-03" in mail.text
    assert "Total: USD 150.00" in mail.text and f"How to pay: {PAYMENT}" in mail.text
    pdf = " ".join(mail.pdf_text().split())
    for expected in (invoice["number"], "2026-03", "150.00"):
        assert expected in pdf, f"{expected!r} not in the PDF: {pdf[:1500]}"

    after_first = friday.mailbox.mark()
    again = admin.post("/api/v1/billing/periods/close", expect=200)
    assert (again["accounts_closed"], again["overage_invoices"]) == (0, 0)
    assert len(invoices_of(friday, cast, "globex")) == 1
    account = account_of(friday, cast, "globex")
    assert account["closed_through"] == "2026-03"
    assert account["allowance"] == {
        "period": "2026-04",
        "allowance_minutes": 600,
        "used_minutes": 0,
        "remaining_minutes": 600,
    }
    friday.mailbox.assert_none(after_first, 1.0, to="accounts@globex.test", kind="invoice")
