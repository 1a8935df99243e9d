"""Automatic answers to a customer's own mail are threaded under it: the acknowledgment of the
mail that opened a ticket, and the note that some of its attachments were refused."""

from __future__ import annotations

from services.notifier.recording import threadable_message_id
from shared import events as ev
from tests.fixtures.events import email_attachments_refused
from tests.notifier.conftest import Env, TicketStory, organization
from tests.notifier.test_email_flow import parts

THEIR_ID = "<CAF=x1@mail.acme.test>"
MB = 1024 * 1024


def refused(story: TicketStory, **overrides: object) -> ev.Event:
    return email_attachments_refused(
        **{
            "recipient": "Jane@Acme.test",
            "in_reply_to": "<CAF=x2@mail.acme.test>",
            "ticket_id": story.ticket_id,
            "ticket_number": story.number,
            **overrides,
        }
    )


async def test_the_acknowledgment_and_a_refusal_are_threaded_under_the_customers_mail(env: Env) -> None:
    story = TicketStory(org=organization(sla_signed=True))
    await env.deliver(story.created(source_message_id=THEIR_ID))
    notice = refused(story)
    await env.deliver(notice)
    await env.deliver(notice)  # once per inbound message

    ack, refusal = env.mail()
    assert ack["In-Reply-To"] == THEIR_ID and ack["References"] == THEIR_ID
    assert refusal["To"] == "jane@acme.test"
    assert refusal["Subject"] == "Re: [TKT-1] Printer offline"
    assert refusal["In-Reply-To"] == "<CAF=x2@mail.acme.test>"
    assert refusal["References"].split() == [ack["Message-ID"], "<CAF=x2@mail.acme.test>"]
    assert refusal["Auto-Submitted"] == "auto-replied"
    assert refusal["Reply-To"] is not None  # a reply with the files goes into the ticket
    for body in parts(refusal):
        assert "scan.tiff" in body and "31.0 MB" in body and "larger than 25.0 MB" in body
        assert "each file up to 25.0 MB, at most 20 files and 40.0 MB in total" in body


async def test_no_acknowledgment_when_ticket_api_says_so_and_foreign_ids_are_checked(env: Env) -> None:
    story = TicketStory(contact_email="flood@acme.test")
    await env.deliver(story.created(acknowledge=False, source_message_id=THEIR_ID))
    # Without a ticket and with a Message-ID that would break a header: still answered, unthreaded.
    await env.deliver(refused(story, ticket_id=None, ticket_number=None, in_reply_to="<a b>\r\nBcc: x"))
    [refusal] = env.mail()
    assert refusal["To"] == "jane@acme.test"
    assert refusal["In-Reply-To"] is None and refusal["References"] is None
    assert refusal["Subject"] == "Re: [TKT-1] Printer offline"
    assert threadable_message_id("id@host") == "<id@host>"
