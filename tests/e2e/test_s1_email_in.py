"""S1 — email in, acknowledgment out (hourly customer, new).

Jane of Acme (a new hourly customer whose SLA is not signed yet) emails support on Tuesday at
10:00. A ticket TKT-n exists and Jane's acknowledgment arrives within seconds: the number in
subject and body, office hours, "within four business hours" with the due time, a link to
track the ticket, how to add comments, the SLA to sign as a PDF, and headers that thread it
under her mail and lead a reply back to the ticket."""

from __future__ import annotations

import base64
import re
from uuid import UUID

import pytest

from tests.e2e.actors import Api
from tests.e2e.cast import Cast
from tests.e2e.conftest import JANE, EmailedTicket, email_in
from tests.e2e.mailbox import compose, reply, send
from tests.e2e.world import Scene

pytestmark = pytest.mark.stack

OUR_MESSAGE_ID = re.compile(r"^<hd\.[0-9a-f]+\.([a-z2-7]{26})\.[a-z2-7]{16}@helpdesk\.test>$")
REPLY_TO = re.compile(r"^support\+([a-z2-7]{26})[a-z2-7]{16}@helpdesk\.test$")


def b32_id(ticket_id: str) -> str:
    """How our Message-IDs and reply addresses spell a ticket's id (unpadded lower base32)."""
    return base64.b32encode(UUID(ticket_id).bytes).decode().rstrip("=").lower()


def test_an_email_becomes_a_ticket_of_the_senders_organization(
    tuesday: Scene, cast: Cast, jane_ticket: EmailedTicket
) -> None:
    ticket = jane_ticket.ticket
    assert re.fullmatch(r"TKT-\d+", ticket["number"])
    assert ticket["channel"] == "email"
    assert ticket["subject"] == "Printer offline"
    assert ticket["urgency"] == "high"  # the mail was sent with high importance
    assert "I must print contracts today" in ticket["description"]
    assert ticket["organization_id"] == cast.organizations["acme"]
    admin = cast.api(tuesday, "admin")
    contact = admin.get(f"/api/v1/contacts/{ticket['contact_id']}")
    assert (contact["email"], contact["name"]) == (JANE, "Jane Doe")
    record = admin.get(f"/api/v1/inbound/emails/{jane_ticket.receipt.inbound_id}")
    assert (record["kind"], record["outcome"], record["ticket_id"]) == (
        "human",
        "ticket_created",
        ticket["id"],
    )


def test_the_acknowledgment_says_what_happens_next(
    tuesday: Scene, cast: Cast, jane_ticket: EmailedTicket
) -> None:
    ack, number = jane_ticket.acknowledgment, jane_ticket.number
    assert ack.to == JANE
    assert ack.sender == "support@helpdesk.test"
    assert number in ack.subject and "Printer offline" in ack.subject
    text = ack.text
    assert f"logged as ticket {number}" in text
    assert "Our office hours: Monday to Friday, 9:00 AM to 5:00 PM (America/Chicago)" in text
    # Tuesday 10:00 + four business hours = Tuesday 14:00 (Chicago is on CDT on March 31).
    assert "within four business hours, by Tuesday, March 31, 2026 at 2:00 PM CDT" in text
    assert "reply to this email" in text
    track = [
        link for link in ack.links() if "/api/v1/ticket-status/" in link and not link.endswith("/appointment")
    ]
    assert track, f"no tracking link in {text!r}"
    assert track[0].startswith(tuesday.gateway)
    browser = Api("browser", tuesday.gateway, None)  # Jane follows it: no sign-in, the link is the key
    try:
        followed = browser.call("GET", track[0].removeprefix(tuesday.gateway))
    finally:
        browser.close()
    assert followed.status_code == 200 and f"{number}: Printer offline" in followed.text
    # The HTML part says the same.
    assert number in ack.html and "within four business hours" in ack.html


def test_a_new_customer_gets_the_sla_to_sign(jane_ticket: EmailedTicket) -> None:
    ack = jane_ticket.acknowledgment
    assert "signed service level agreement" in ack.text
    pdf = ack.attachment("application/pdf")
    assert pdf.filename == "service-level-agreement.pdf"
    text = ack.pdf_text()
    assert "Service Level Agreement" in text
    assert "within four business hours" in text
    assert "Signature and date" in text


def test_the_acknowledgment_is_threaded_and_leads_a_reply_back(jane_ticket: EmailedTicket) -> None:
    ack = jane_ticket.acknowledgment
    jane_message_id = str(jane_ticket.receipt.message["Message-ID"])
    match = OUR_MESSAGE_ID.match(ack.message_id)
    assert match, ack.message_id
    assert match[1] == b32_id(jane_ticket.id), "the Message-ID names the ticket"
    assert ack.header("In-Reply-To") == jane_message_id
    assert ack.references[-1] == jane_message_id
    reply_to = ack.header("Reply-To") or ""
    token = REPLY_TO.match(reply_to)
    assert token and token[1] == b32_id(jane_ticket.id), reply_to
    assert ack.header("Auto-Submitted") == "auto-replied"  # RFC 3834: never answered by robots
    assert ack.header("X-Auto-Response-Suppress") == "All"


def test_the_acknowledgment_arrives_within_seconds(jane_ticket: EmailedTicket) -> None:
    # From Jane's SMTP transaction's start to the acknowledgment in the sink (the machine may
    # be busy running other tests: the story says "a second or two").
    assert jane_ticket.seconds_to_acknowledgment < 3.0, jane_ticket.seconds_to_acknowledgment


def test_a_sender_of_no_known_organization_is_acknowledged_with_the_sla(tuesday: Scene, cast: Cast) -> None:
    emailed = email_in(
        tuesday, cast, "Sam Newman <sam@newco.test>", "Laptop will not boot", "It shows a black screen."
    )
    assert emailed.ticket["organization_id"] is None
    assert emailed.acknowledgment.attachment("application/pdf").filename == "service-level-agreement.pdf"


def test_a_reply_finds_its_ticket_by_the_reply_address_or_the_subject_tag(
    tuesday: Scene, cast: Cast, jane_ticket: EmailedTicket
) -> None:
    admin = cast.api(tuesday, "admin")
    ack = jane_ticket.acknowledgment
    # A mail client that drops In-Reply-To/References still writes to the Reply-To address.
    bare = reply(ack, "Jane Doe <jane@acme.test>", "The printer model is LaserJet 4000.", quote=False)
    del bare["In-Reply-To"], bare["References"]
    received = send(tuesday.inbound_port, bare)
    record = admin.get(f"/api/v1/inbound/emails/{received.inbound_id}")
    assert (record["outcome"], record["matched_by"], record["ticket_id"]) == (
        "message_added",
        "reply_token",
        jane_ticket.id,
    )
    # A fresh mail to the plain address with [TKT-n] in the subject, from the ticket's contact.
    tagged = compose(
        "Jane Doe <jane@acme.test>",
        f"[{jane_ticket.number}] one more detail",
        "It is on the second floor.",
    )
    received = send(tuesday.inbound_port, tagged)
    record = admin.get(f"/api/v1/inbound/emails/{received.inbound_id}")
    assert (record["outcome"], record["matched_by"], record["ticket_id"]) == (
        "message_added",
        "subject_tag",
        jane_ticket.id,
    )
