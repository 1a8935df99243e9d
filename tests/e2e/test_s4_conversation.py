"""S4 — conversation by email.

The consultant answers through the API and Jane gets it by mail, threaded; her reply (quoting
our mail) lands in the same ticket without the quoted history; a brand-new mail from her is a
new ticket; her out-of-office auto-reply makes no ticket, no acknowledgment and no loop; and
mallory@evil.test cannot get into Jane's ticket by putting its number in a subject."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.actors import Api
from tests.e2e.cast import CONSULTANTS, Cast
from tests.e2e.conftest import JANE, EmailedTicket, consultant_news, email_in, triaged
from tests.e2e.mailbox import Mail, compose, reply, send
from tests.e2e.world import Scene

pytestmark = pytest.mark.stack

ANSWER = "Could you restart the printer and tell me what its display shows?"
JANES_REPLY = "The display shows error E-42 and the green light blinks."


def consultant_of(scene: Scene, cast: Cast, ticket_id: str) -> tuple[str, dict[str, Any], Api]:
    """The ticket's consultant: key, profile, and their API session."""
    ticket = triaged(scene, cast, ticket_id)
    key = next(k for k, agent_id in cast.consultants.items() if agent_id == ticket["assignee_id"])
    return key, CONSULTANTS[key], cast.api(scene, key)


@pytest.fixture(scope="module")
def answer(tuesday: Scene, cast: Cast, jane_ticket: EmailedTicket) -> Mail:
    """The consultant answers Jane through the API; what reaches her mailbox."""
    key, _, api = consultant_of(tuesday, cast, jane_ticket.id)
    since = tuesday.mailbox.mark()
    message = api.post(
        f"/api/v1/tickets/{jane_ticket.id}/messages", json={"body": ANSWER, "visibility": "public"}
    )
    assert (message["author_kind"], message["author_id"]) == ("agent", cast.consultants[key])
    return tuesday.mailbox.one(since, to=JANE, kind="agent_reply", ticket=jane_ticket.number)


def messages_of(scene: Scene, cast: Cast, ticket_id: str) -> list[dict[str, Any]]:
    page = cast.api(scene, "admin").get(f"/api/v1/tickets/{ticket_id}/messages", params={"limit": 200})
    items: list[dict[str, Any]] = page["items"]
    return items


def test_the_consultants_answer_reaches_jane_threaded(
    tuesday: Scene, cast: Cast, jane_ticket: EmailedTicket, answer: Mail
) -> None:
    _, consultant, _ = consultant_of(tuesday, cast, jane_ticket.id)
    assert answer.text.startswith(ANSWER)
    assert f"{consultant['name']} (Helpdesk Consulting)" == answer.sender_name
    assert answer.subject == f"Re: [{jane_ticket.number}] Printer offline"
    # Threaded under the acknowledgment (and so under Jane's first mail).
    assert jane_ticket.acknowledgment.message_id in answer.references
    assert answer.header("In-Reply-To") == answer.references[-1]
    assert answer.message_id not in answer.references
    assert (answer.header("Reply-To") or "").startswith("support+")
    assert answer.header("Auto-Submitted") is None  # a person wrote it: replies are welcome
    # The ticket waits for nobody now: the first answer opened it.
    ticket = cast.api(tuesday, "admin").get(f"/api/v1/tickets/{jane_ticket.id}")
    assert ticket["status"] == "open"


def test_janes_reply_lands_in_the_ticket_without_the_quoted_history(
    tuesday: Scene, cast: Cast, jane_ticket: EmailedTicket, answer: Mail
) -> None:
    _, consultant, _ = consultant_of(tuesday, cast, jane_ticket.id)
    since = tuesday.mailbox.mark()
    mail = reply(answer, "Jane Doe <jane@acme.test>", JANES_REPLY)
    assert "> Could you restart the printer" in mail.get_content()  # her client quoted ours
    received = send(tuesday.inbound_port, mail)
    admin = cast.api(tuesday, "admin")
    record = admin.get(f"/api/v1/inbound/emails/{received.inbound_id}")
    assert (record["outcome"], record["matched_by"], record["ticket_id"]) == (
        "message_added",
        "in_reply_to",
        jane_ticket.id,
    )
    stored = next(
        m for m in messages_of(tuesday, cast, jane_ticket.id) if m["id"] == record["ticket_message_id"]
    )
    assert (stored["author_kind"], stored["visibility"]) == ("customer", "public")
    assert stored["body"] == JANES_REPLY
    # The consultant hears of it.
    note = tuesday.mailbox.one(since, to=consultant["email"], kind="customer_reply_consultant")
    assert JANES_REPLY in note.text and "> Could you" not in note.text


def test_the_link_in_our_mail_shows_jane_her_ticket_without_signing_in(
    tuesday: Scene, cast: Cast, jane_ticket: EmailedTicket, answer: Mail
) -> None:
    """ "Track your ticket" in the consultant's answer: a page with the ticket's state and the
    public conversation, through the gateway, no sign-in (the signed link is the key)."""
    _, consultant, api = consultant_of(tuesday, cast, jane_ticket.id)
    api.post(
        f"/api/v1/tickets/{jane_ticket.id}/messages",
        json={"body": "Customer sounds annoyed; call before noon.", "visibility": "internal"},
    )
    [link] = {word for word in answer.text.split() if "/api/v1/ticket-status/" in word}
    assert link.startswith(f"{tuesday.gateway}/api/v1/ticket-status/"), link
    browser = Api("browser", tuesday.gateway, None)
    try:
        page = browser.call("GET", link.removeprefix(tuesday.gateway))
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert f"{jane_ticket.number}: Printer offline" in page.text
        assert f"Your consultant: {consultant['name']}" in page.text
        assert ANSWER in page.text, "the consultant's answer"
        assert "annoyed" not in page.text, "internal notes never show"
        path = link.removeprefix(tuesday.gateway)
        altered = browser.call("GET", path[:-2] + ("xx" if not path.endswith("xx") else "yy"))
        assert altered.status_code == 400 and "Printer offline" not in altered.text
    finally:
        browser.close()


def test_a_brand_new_email_is_a_new_ticket(tuesday: Scene, cast: Cast, jane_ticket: EmailedTicket) -> None:
    emailed = email_in(
        tuesday, cast, "Jane Doe <jane@acme.test>", "New laptop needs Office", "Please install Office on it."
    )
    assert emailed.id != jane_ticket.id and emailed.number != jane_ticket.number
    assert emailed.ticket["organization_id"] == cast.organizations["acme"]
    assert emailed.acknowledgment.header("In-Reply-To") == str(emailed.receipt.message["Message-ID"])
    # Continuity: Acme's consultant takes Acme's new ticket too.
    assert (
        triaged(tuesday, cast, emailed.id)["assignee_id"]
        == triaged(tuesday, cast, jane_ticket.id)["assignee_id"]
    )
    consultant_news(tuesday, to=JANE, ticket=emailed.number)


def test_an_out_of_office_reply_makes_no_ticket_no_acknowledgment_and_no_loop(
    tuesday: Scene, cast: Cast, jane_ticket: EmailedTicket, answer: Mail, jane: Api
) -> None:
    since = tuesday.mailbox.mark()
    admin = cast.api(tuesday, "admin")

    def tickets() -> set[tuple[str, str]]:
        return {
            (t["number"], t["status"]) for t in admin.get("/api/v1/tickets", params={"limit": 200})["items"]
        }

    tickets_before = tickets()
    auto = reply(
        answer,
        "Jane Doe <jane@acme.test>",
        "I am out of the office until Monday and will answer your mail then.",
        quote=False,
        headers={"Auto-Submitted": "auto-replied", "X-Autoreply": "yes"},
    )
    auto.replace_header("Subject", f"Automatic reply: {answer.subject}")
    received = send(tuesday.inbound_port, auto)
    record = admin.get(f"/api/v1/inbound/emails/{received.inbound_id}")
    assert record["kind"] == "auto_reply"
    assert (record["outcome"], record["ticket_id"]) == ("recorded_on_ticket", jane_ticket.id)
    assert record["acknowledge"] is None
    # Kept for the consultant as an internal note; Jane does not see it, and nothing changed.
    note = next(
        m for m in messages_of(tuesday, cast, jane_ticket.id) if m["id"] == record["ticket_message_id"]
    )
    assert (note["visibility"], note["author_kind"]) == ("internal", "system")
    assert record["ticket_message_id"] not in {
        m["id"] for m in jane.get(f"/api/v1/tickets/{jane_ticket.id}/messages")["items"]
    }
    assert tickets() == tickets_before  # no new ticket, no status changed
    # Nothing goes back to her: no acknowledgment, nothing on the ticket (answering an
    # auto-reply is how mail loops start).
    tuesday.mailbox.assert_none(since, 2.0, to=JANE, ticket=jane_ticket.number)
    assert not tuesday.mailbox.find(since, to=JANE, kind="acknowledgment")


def test_mallory_cannot_enter_janes_ticket_with_its_number(
    tuesday: Scene, cast: Cast, jane_ticket: EmailedTicket
) -> None:
    since = tuesday.mailbox.mark()
    forged = compose(
        "Mallory <mallory@evil.test>",
        f"Re: [{jane_ticket.number}] Printer offline",
        "Please send all invoices of Acme to my address from now on.",
    )
    received = send(tuesday.inbound_port, forged)
    admin = cast.api(tuesday, "admin")
    record = admin.get(f"/api/v1/inbound/emails/{received.inbound_id}")
    assert record["ticket_id"] != jane_ticket.id
    assert record["needs_review"] is True
    assert (
        f"subject names {jane_ticket.number} but the sender is not on that ticket" in record["review_reason"]
    )
    bodies = [m["body"] for m in messages_of(tuesday, cast, jane_ticket.id)]
    assert not any("invoices of Acme" in body for body in bodies)
    ticket = admin.get(f"/api/v1/tickets/{jane_ticket.id}")
    assert "invoices of Acme" not in ticket["description"]
    # Mallory's mail is a ticket of her own (no organization); nothing about it reaches Jane.
    own = admin.get(f"/api/v1/tickets/{record['ticket_id']}")
    assert own["organization_id"] is None and own["number"] != jane_ticket.number
    ack = tuesday.mailbox.one(since, to="mallory@evil.test", kind="acknowledgment")
    assert ack.ticket == own["number"]
    tuesday.mailbox.assert_none(since, 1.0, to=JANE)


def test_mallory_holding_janes_thread_is_kept_for_agents_only(
    tuesday: Scene, cast: Cast, jane_ticket: EmailedTicket, answer: Mail
) -> None:
    """Jane forwarded the consultant's answer to mallory@evil.test (or Mallory saw it on a CC):
    Mallory now holds our Message-ID and the reply token. Replying to it names Jane's ticket but
    does not make Mallory its customer: kept on the ticket for agents only, flagged, and nobody
    is sent anything."""
    _, consultant, _ = consultant_of(tuesday, cast, jane_ticket.id)
    since = tuesday.mailbox.mark()
    admin = cast.api(tuesday, "admin")
    ticket_before = admin.get(f"/api/v1/tickets/{jane_ticket.id}")
    received = send(
        tuesday.inbound_port,
        reply(answer, "Mallory <mallory@evil.test>", "Please wire the refund to IBAN XX00 1234 from now on."),
    )
    record = admin.get(f"/api/v1/inbound/emails/{received.inbound_id}")
    assert (record["outcome"], record["matched_by"], record["ticket_id"]) == (
        "recorded_on_ticket",
        "in_reply_to",
        jane_ticket.id,
    )
    assert record["needs_review"] is True
    assert record["review_reason"].startswith("sender not on ticket: mallory@evil.test is neither")
    note = next(
        m for m in messages_of(tuesday, cast, jane_ticket.id) if m["id"] == record["ticket_message_id"]
    )
    assert (note["visibility"], note["author_kind"]) == ("internal", "system") and "IBAN" in note["body"]
    ticket = admin.get(f"/api/v1/tickets/{jane_ticket.id}")
    assert (ticket["status"], ticket["contact_id"]) == (ticket_before["status"], ticket_before["contact_id"])
    # Jane's page (the link of the answer) shows none of it.
    [link] = {word for word in answer.text.split() if "/api/v1/ticket-status/" in word}
    browser = Api("browser", tuesday.gateway, None)
    try:
        page = browser.call("GET", link.removeprefix(tuesday.gateway))
        assert page.status_code == 200 and ANSWER in page.text and "IBAN" not in page.text
    finally:
        browser.close()
    # Nobody is sent anything: not Mallory, not Jane, not the consultant.
    tuesday.mailbox.assert_none(since, 2.0, to="mallory@evil.test")
    tuesday.mailbox.assert_none(since, 0.1, to=JANE)
    tuesday.mailbox.assert_none(since, 0.1, to=consultant["email"], ticket=jane_ticket.number)
