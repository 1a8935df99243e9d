"""Holding a reference is not being the customer: crafted messages of each class through both
ways in (the SMTP listener and ``POST /api/v1/inbound/email``), with what was stored, the flag
and its reason, what each party is sent (the events the notifier mails from) and what the
customer's ticket page shows."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

import aiosmtplib
import pytest
from sqlalchemy import select

from services.ticket_api.db import outbox
from services.ticket_api.inbound.service import Inbound
from services.ticket_api.inbound.smtp_listener import start_server
from services.ticket_api.organizations.models import Contact
from shared.events import Event
from shared.mail_ids import make_message_id, make_reply_token, plus_address
from shared.signed_links import TICKET_STATUS, sign
from tests import auth
from tests.auth import bearer
from tests.ticket_api.conftest import Actors
from tests.ticket_api.inbound import messages as mail

JANE = "jane@acme.test"
MALLORY = "mallory@evil.test"
SUPPORT = "support@helpdesk.test"
REPLY = re.compile(r"OK: (\w+) ([0-9a-f-]{36})")


@dataclass
class Door:
    """One way in, and what the tests read back through the API."""

    api: Actors
    via: str
    smtp_port: int

    @property
    def secret(self) -> str:
        return self.api.runtime.settings.secret_key.get_secret_value()

    async def deliver(
        self, raw: bytes, *, sender: str = JANE, recipients: tuple[str, ...] = (SUPPORT,)
    ) -> dict[str, Any]:
        """Hand ``raw`` in through this door; the stored record of it, as agents see it."""
        if self.via == "smtp":
            options = [] if sender.isascii() else ["SMTPUTF8"]
            async with aiosmtplib.SMTP(hostname="127.0.0.1", port=self.smtp_port, timeout=30) as client:
                _, answer = await client.sendmail(sender, list(recipients), raw, mail_options=options)
            match = REPLY.search(answer)
            assert match, answer
            inbound_id = match.group(2)
        else:
            query = urlencode([("sender", sender), *(("recipient", r) for r in recipients)])
            response = await self.api.client.post(
                f"/api/v1/inbound/email?{query}",
                content=raw,
                headers={"Content-Type": "message/rfc822", **bearer(auth.service("mta"))},
            )
            assert response.status_code in (200, 201), response.text
            inbound_id = response.json()["id"]
        record = await self.api.client.get(f"/api/v1/inbound/emails/{inbound_id}", headers=self.api.agent)
        assert record.status_code == 200, record.text
        result: dict[str, Any] = record.json()
        return result

    async def reply(
        self, in_reply_to: str, text: str, *, message_id: str, sender: str = "Jane Doe <jane@acme.test>"
    ) -> dict[str, Any]:
        """A Gmail reply under ``in_reply_to``, from ``sender``; its record."""
        raw = mail.gmail_reply(
            in_reply_to=in_reply_to,
            subject="Re: Printer offline",
            reply=text,
            quoted="We have your request.",
            sender=sender,
            message_id=message_id,
        )
        return await self.deliver(raw, sender=sender.rpartition("<")[2].rstrip(">"))

    async def janes_ticket(self) -> dict[str, Any]:
        """Jane (of Acme) writes in; her ticket."""
        record = await self.deliver(mail.plain())
        assert record["outcome"] == "ticket_created"
        return await self.ticket(record["ticket_id"])

    async def ticket(self, ticket_id: str) -> dict[str, Any]:
        response = await self.api.client.get(f"/api/v1/tickets/{ticket_id}", headers=self.api.agent)
        assert response.status_code == 200, response.text
        ticket: dict[str, Any] = response.json()
        return ticket

    async def messages(self, ticket_id: str) -> list[dict[str, Any]]:
        response = await self.api.client.get(f"/api/v1/tickets/{ticket_id}/messages", headers=self.api.agent)
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    async def customer_page(self, ticket: dict[str, Any], email: str = JANE) -> str:
        """The customer's ticket page, behind the signed link of our mail."""
        token = sign(
            {"ticket_id": ticket["id"], "email": email},
            purpose=TICKET_STATUS,
            secret=self.secret,
            expires_at=datetime.now(UTC) + timedelta(days=1),
        )
        page = await self.api.client.get(f"/api/v1/ticket-status/{token}")
        assert page.status_code == 200, page.text
        return page.text

    async def contact_emails(self) -> list[str]:
        async with self.api.runtime.sessions() as session:
            return sorted((await session.scalars(select(Contact.email))).all())

    async def events(self, event_type: str) -> list[dict[str, Any]]:
        async with self.api.runtime.sessions() as session:
            rows = (await session.scalars(select(outbox.c.event).order_by(outbox.c.created_at))).all()
        return [e.data for e in map(Event.model_validate_json, rows) if e.type == event_type]

    async def mailed_to(self, address: str) -> list[str]:
        """What the notifier would send ``address``, from the events recorded: acknowledgments
        of new tickets, notices of refused attachments (it mails customers nothing else for
        inbound mail; internal messages never)."""
        sent = [
            f"acknowledgment of {e['number']}"
            for e in await self.events("ticket.created")
            if e["contact"]["email"] == address and e["acknowledge"]
        ]
        sent += [
            f"attachments refused on {e['ticket_number']}"
            for e in await self.events("email.attachments_refused")
            if e["recipient"] == address
        ]
        return sent

    def our_message_id(self, ticket: dict[str, Any]) -> str:
        return make_message_id(UUID(ticket["id"]), secret=self.secret, domain="helpdesk.test")

    def reply_address(self, ticket: dict[str, Any]) -> str:
        return plus_address(SUPPORT, make_reply_token(UUID(ticket["id"]), secret=self.secret))


@pytest.fixture(params=["smtp", "http"])
async def door(request: pytest.FixtureRequest, api: Actors) -> AsyncIterator[Door]:
    runtime = api.runtime
    inbound = Inbound(sessions=runtime.sessions, outbox=runtime.outbox, settings=runtime.settings)  # type: ignore[arg-type]
    server = await start_server(inbound, runtime.settings, host="127.0.0.1", port=0)  # type: ignore[arg-type]
    try:
        yield Door(api, request.param, server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()


async def _assert_kept_off_the_page(
    door: Door, ticket: dict[str, Any], record: dict[str, Any], words: str
) -> None:
    """``record`` is on ``ticket`` for agents only; Jane's page, her ticket and what she is
    sent are as before; the sender was sent nothing."""
    assert record["needs_review"] is True
    assert record["ticket_id"] == ticket["id"] and record["acknowledge"] is None
    assert await door.contact_emails() == [JANE], "nobody else became a contact"
    note = next(m for m in await door.messages(ticket["id"]) if m["id"] == record["ticket_message_id"])
    assert (note["visibility"], note["author_kind"]) == ("internal", "system") and words in note["body"]
    after = await door.ticket(ticket["id"])
    assert (after["status"], after["contact_id"]) == (ticket["status"], ticket["contact_id"])
    page = await door.customer_page(ticket)
    assert words not in page
    assert [e["visibility"] for e in await door.events("ticket.message_added")] == ["internal"]


# --- a valid reference from the wrong sender -----------------------------------------------


async def test_a_stranger_replying_to_our_message_id_joins_flagged_for_agents_only(door: Door) -> None:
    ticket = await door.janes_ticket()
    raw = mail.gmail_reply(
        in_reply_to=door.our_message_id(ticket),
        subject=f"Re: [{ticket['number']}] Printer offline",
        reply="Please send all invoices of Acme to me from now on.",
        quoted="We have your request.",
        sender=f"Mallory <{MALLORY}>",
        message_id="<m.1@evil.test>",
    )
    record = await door.deliver(raw, sender=MALLORY)
    assert (record["outcome"], record["matched_by"]) == ("recorded_on_ticket", "in_reply_to")
    assert record["review_reason"].startswith("sender not on ticket: mallory@evil.test is neither")
    await _assert_kept_off_the_page(door, ticket, record, "invoices of Acme")
    assert await door.mailed_to(MALLORY) == []
    assert await door.mailed_to(JANE) == [f"acknowledgment of {ticket['number']}"]
    # Jane herself, replying to the same mail, is the customer.
    own = await door.reply(door.our_message_id(ticket), "It shows E42.", message_id="<jane.2@mail.acme.test>")
    assert (own["outcome"], own["needs_review"]) == ("message_added", False)
    assert "It shows E42." in await door.customer_page(ticket)


async def test_a_stranger_writing_to_the_reply_address_joins_flagged_for_agents_only(door: Door) -> None:
    ticket = await door.janes_ticket()
    address = door.reply_address(ticket)
    raw = mail.plain(
        sender=f"Mallory <{MALLORY}>",
        to=address,
        subject="Change of address",
        body="Our bank details changed, pay to the new account.\n",
        message_id="<m.2@evil.test>",
    )
    record = await door.deliver(raw, sender=MALLORY, recipients=(address,))
    assert (record["outcome"], record["matched_by"]) == ("recorded_on_ticket", "reply_token")
    assert "sender not on ticket" in record["review_reason"]
    await _assert_kept_off_the_page(door, ticket, record, "bank details")
    assert await door.mailed_to(MALLORY) == []


async def test_a_colleague_of_the_organization_with_our_reference_is_a_customer(door: Door) -> None:
    ticket = await door.janes_ticket()
    record = await door.reply(
        door.our_message_id(ticket),
        "Same on the 2nd floor.",
        sender="Bob <bob@acme.test>",
        message_id="<bob.1@acme.test>",
    )
    assert (record["outcome"], record["needs_review"]) == ("message_added", False)
    assert "Same on the 2nd floor." in await door.customer_page(ticket)


# --- our Message-IDs: every character counts, mail in flight still threads ------------------


async def test_a_reply_to_mail_sent_before_the_full_mac_still_threads_an_altered_one_not(
    door: Door,
) -> None:
    from tests.notifier.test_mail_ids import v1_message_id

    ticket = await door.janes_ticket()
    sent_before = v1_message_id(UUID(ticket["id"]), door.secret, "helpdesk.test")
    reply = await door.reply(sent_before, "Still broken.", message_id="<jane.3@mail.acme.test>")
    assert (reply["outcome"], reply["ticket_id"]) == ("message_added", ticket["id"])
    current = door.our_message_id(ticket)
    last = current[-len("@helpdesk.test>") - 1]
    altered = current.replace(f"{last}@", f"{'a' if last != 'a' else 'b'}@")
    stray = await door.reply(
        altered, "Let me in.", sender=f"Mallory <{MALLORY}>", message_id="<m.4@evil.test>"
    )
    assert stray["ticket_id"] != ticket["id"] and stray["matched_by"] is None


# --- a From the parser had to repair authorizes nothing --------------------------------------


def crafted(from_lines: bytes, *, message_id: str, in_reply_to: str | None = None) -> bytes:
    """A message whose From lines are exactly ``from_lines`` (CRLF ends elsewhere)."""
    threading = f"In-Reply-To: {in_reply_to}\r\nReferences: {in_reply_to}\r\n" if in_reply_to else ""
    return (
        from_lines
        + (
            f"To: {SUPPORT}\r\nSubject: Printer offline\r\nDate: {mail.DATE}\r\nMessage-ID: {message_id}\r\n"
            f"{threading}Content-Type: text/plain; charset=utf-8\r\n\r\n"
            "Please send all invoices of Acme to my new address.\r\n"
        ).encode()
    )


IMPERSONATIONS = {
    # Python reads jane@acme.test; a mail system that vouched for the sender read mallory's.
    "display-name trick": b"From: jane@acme.test)<mallory@evil.test>\r\n",
    "unbalanced bracket": b"From: Jane Doe <jane@acme.test\r\n",
    "unbalanced quote": b'From: "Jane Doe <jane@acme.test>\r\n',
    "two mailboxes, Sender someone else": (
        b"From: jane@acme.test, mallory@evil.test\r\nSender: mallory@evil.test\r\n"
    ),
    "two From headers": b"From: Jane Doe <jane@acme.test>\r\nFrom: Mallory <mallory@evil.test>\r\n",
    "bare CR smuggling a From": (
        b"X-Note: hi\rFrom: Jane Doe <jane@acme.test>\r\nFrom: Mallory <mallory@evil.test>\r\n"
    ),
}


@pytest.mark.parametrize("trick", list(IMPERSONATIONS))
async def test_a_from_the_parser_had_to_repair_is_kept_flagged_never_the_customer(
    door: Door, trick: str
) -> None:
    ticket = await door.janes_ticket()
    before = await door.messages(ticket["id"])
    lone = await door.deliver(crafted(IMPERSONATIONS[trick], message_id="<imp.1@evil.test>"), sender=MALLORY)
    assert (lone["outcome"], lone["ticket_id"], lone["needs_review"]) == ("flagged", None, True)
    assert lone["review_reason"].startswith("sender could not be verified: ")
    assert await door.messages(ticket["id"]) == before
    assert await door.contact_emails() == [JANE]
    # With a reference of ours it is kept on the ticket it names, for agents only.
    replying = crafted(
        IMPERSONATIONS[trick], message_id="<imp.2@evil.test>", in_reply_to=door.our_message_id(ticket)
    )
    record = await door.deliver(replying, sender=MALLORY)
    assert record["outcome"] == "recorded_on_ticket"
    assert record["review_reason"].startswith("sender not on ticket: the sender could not be verified (")
    await _assert_kept_off_the_page(door, ticket, record, "invoices of Acme")
    assert await door.mailed_to(JANE) == [f"acknowledgment of {ticket['number']}"]
    assert len(await door.events("ticket.created")) == 1


# --- our own acknowledgment sent back in ----------------------------------------------------


async def test_our_acknowledgment_sent_back_in_is_linked_to_its_ticket_as_our_own_mail(door: Door) -> None:
    ticket = await door.janes_ticket()
    ours = door.our_message_id(ticket)
    acknowledgment = mail.plain(
        sender=f"Helpdesk Support <{SUPPORT}>",
        to=JANE,
        subject=f"[{ticket['number']}] We have received your request: Printer offline",
        body=f"Your request has been logged as ticket {ticket['number']}.\n",
        message_id=ours,
        headers={
            "In-Reply-To": "<cafe.1@mail.acme.test>",
            "References": "<cafe.1@mail.acme.test>",
            "Auto-Submitted": "auto-replied",
            "Reply-To": door.reply_address(ticket),
            "X-Helpdesk-Ticket": ticket["number"],
        },
    )
    record = await door.deliver(acknowledgment, sender=SUPPORT)
    assert (record["kind"], record["outcome"], record["ticket_id"], record["matched_by"]) == (
        "own",
        "recorded_on_ticket",
        ticket["id"],
        "own_message_id",
    )
    assert record["acknowledge"] is None and record["needs_review"] is True
    assert record["review_reason"].startswith("our own mail came back in (")
    assert "not on that ticket" not in record["review_reason"]
    assert await door.messages(ticket["id"]) == [], "the mail is already there: nothing added"
    assert "Your request has been logged" not in await door.customer_page(ticket)
    assert await door.mailed_to(SUPPORT) == [] and len(await door.events("ticket.created")) == 1
    assert (await door.ticket(ticket["id"]))["status"] == ticket["status"]


# --- internationalized addresses -------------------------------------------------------------


async def test_a_customer_with_a_utf8_address_is_acknowledged_and_a_look_alike_domain_stands_out(
    door: Door,
) -> None:
    jorg = "jörg@bücher.example"
    raw = (  # RFC 6532: UTF-8 in the headers, as a client sends it over SMTPUTF8
        f"From: Jörg <{jorg}>\r\nTo: {SUPPORT}\r\nSubject: Drucker offline\r\nDate: {mail.DATE}\r\n"
        "Message-ID: <intl.1@xn--bcher-kva.example>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        "Der Drucker antwortet nicht.\r\n"
    ).encode()
    record = await door.deliver(raw, sender=jorg)
    assert (record["outcome"], record["needs_review"], record["acknowledge"]) == (
        "ticket_created",
        False,
        True,
    )
    assert record["from_address"] == jorg
    ticket = await door.ticket(record["ticket_id"])
    assert await door.mailed_to(jorg) == [f"acknowledgment of {ticket['number']}"]
    # A stranger from a look-alike of a domain (a Cyrillic "а") holding our reference: agents see
    # the xn-- form beside it.
    janes = await door.janes_ticket()
    look_alike = "jane@аcme.test"
    stranger = await door.reply(
        door.our_message_id(janes),
        "New bank details.",
        sender=f"Jane Doe <{look_alike}>",
        message_id="<intl.2@evil.test>",
    )
    assert stranger["outcome"] == "recorded_on_ticket"
    assert "jane@аcme.test (xn--cme-5cd.test, mixed scripts) is neither" in stranger["review_reason"]


# --- "signed SLA received" by content; programs refused and the sender told -------------------


async def test_a_program_declared_a_pdf_is_refused_and_only_a_real_pdf_awaits_sla_review(door: Door) -> None:
    from tests.ticket_api.inbound.test_pure import EXE

    files = [
        ("SLA signed.pdf", "application/pdf", EXE),
        ("report.pdf.exe", "application/pdf", EXE),
        ("SLA.pdf", "application/pdf", b"%PDF-1.4 nothing a parser opens"),
    ]
    record = await door.deliver(mail.with_attachments(files, subject="Our SLA"))
    assert record["outcome"] == "ticket_created"
    assert "signed SLA received" not in (record["review_reason"] or "")
    attachments = await door.api.client.get(
        f"/api/v1/tickets/{record['ticket_id']}/attachments", headers=door.api.agent
    )
    assert [(a["filename"], a["content_type"]) for a in attachments.json()] == [
        ("SLA signed.pdf", "application/octet-stream"),  # declared a PDF: by content, it is not
        ("report.pdf.exe", "application/octet-stream"),
        ("SLA.pdf", "application/octet-stream"),
    ]
    (refused,) = await door.events("email.attachments_refused")
    assert refused["recipient"] == JANE
    assert [(r["filename"], r["reason"]) for r in refused["refused"]] == [
        ("SLA signed.pdf", "it is a Windows program: we do not accept programs as attachments"),
        ("report.pdf.exe", "it is a Windows program: we do not accept programs as attachments"),
    ]
    sla = await door.api.client.get("/api/v1/inbound/sla-documents", headers=door.api.agent)
    assert sla.json() == []
    ticket = await door.ticket(record["ticket_id"])
    assert "Please find the documents attached." in await door.customer_page(ticket)
    assert await door.mailed_to(JANE) == [
        f"acknowledgment of {ticket['number']}",
        f"attachments refused on {ticket['number']}",
    ]
    # A real PDF is what "signed SLA received — needs review" is for.
    real = await door.deliver(
        mail.with_attachments(
            [("scan", "application/octet-stream", mail.PDF)], message_id="<sla.2@acme.test>"
        )
    )
    assert "signed SLA received — needs review" in real["review_reason"]
    (review,) = (await door.api.client.get("/api/v1/inbound/sla-documents", headers=door.api.agent)).json()
    assert review["inbound_email_id"] == real["id"]


# --- a Message-ID re-used with different content ------------------------------------------------


async def test_a_message_id_re_used_with_other_words_is_kept_and_flagged_not_dropped(door: Door) -> None:
    ticket = await door.janes_ticket()  # Message-ID <cafe.1@mail.acme.test>
    forged = mail.plain(
        sender=f"Mallory <{MALLORY}>",
        subject=f"Re: [{ticket['number']}] Printer offline",
        body="Cancel my contract, please.\n",
    )
    record = await door.deliver(forged, sender=MALLORY)
    assert (record["outcome"], record["ticket_id"], record["needs_review"], record["duplicate"]) == (
        "flagged",
        None,
        True,
        False,
    )
    assert "re-used with different content" in record["review_reason"]
    assert await door.messages(ticket["id"]) == []
    assert "Cancel my contract" not in await door.customer_page(ticket)
    assert await door.mailed_to(MALLORY) == [] and len(await door.events("ticket.created")) == 1
    raw = await door.api.client.get(f"/api/v1/inbound/emails/{record['id']}/raw", headers=door.api.agent)
    assert raw.status_code == 200 and b"Cancel my contract" in raw.content, "kept"


# --- a fake attribution inside new text; other tickets' subject tags -------------------------


async def test_new_text_with_a_fake_attribution_is_kept_whole_and_other_tags_leave_the_subject(
    door: Door,
) -> None:
    from tests.ticket_api.inbound.test_pure import FAKE_ATTRIBUTION

    record = await door.deliver(
        mail.plain(subject="Re: [TKT-999999] Fwd: [ TKT-5 ] Van broken", body=FAKE_ATTRIBUTION + "\n")
    )
    assert record["outcome"] == "ticket_created"
    ticket = await door.ticket(record["ticket_id"])
    assert ticket["description"] == FAKE_ATTRIBUTION
    assert ticket["subject"] == "Van broken"
    (created,) = await door.events("ticket.created")
    assert created["subject"] == "Van broken", "the acknowledgment's subject is the ticket's"
    page = await door.customer_page(ticket)
    assert "Please send a mechanic." in page and "TKT-999999" not in page
