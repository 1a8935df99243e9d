"""Events in, real mail out: what the customer and the consultant receive, read back as MIME."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from uuid import uuid4

from services.notifier.handlers.conversation import status_change_is_news
from services.notifier.models import DeliveryState
from shared.mail_ids import owner_of_message_id, owner_of_reply_token, token_of_plus_address
from shared.sign_in_links import read_token
from shared.signed_links import TICKET_STATUS, verify
from tests.fixtures.events import (
    agent_ref,
    customer_sign_in_requested,
    ticket_triaged,
    triage_breakdown,
)
from tests.notifier.conftest import SECRET, Env, TicketStory, agent_event, organization, ticket_status_link


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content().replace("\r\n", "\n"), html.get_content().replace("\r\n", "\n")


def attachments(message: EmailMessage) -> list[tuple[str, str, bytes]]:
    return [
        (part.get_filename() or "", part.get_content_type(), part.get_content())
        for part in message.iter_attachments()
    ]


async def test_s1_acknowledgment_at_once_threaded_with_the_sla_attached(env: Env) -> None:
    story = TicketStory()  # Jane, no organization yet, Tuesday 10:00 in Chicago, by email
    created = story.created()
    await env.deliver(created)

    [ack] = env.mail()
    assert ack["To"] == "jane@acme.test"
    assert "[TKT-1]" in ack["Subject"]
    assert ack["Auto-Submitted"] == "auto-replied"
    assert owner_of_message_id(ack["Message-ID"], secret=SECRET) == story.ticket_id
    token = token_of_plus_address(ack["Reply-To"], "support@helpdesk.test")
    assert token is not None and owner_of_reply_token(token, secret=SECRET) == story.ticket_id
    text, html = parts(ack)
    for body in (text, html):
        assert "TKT-1" in body
        assert "within four business hours" in body.replace("<strong>", "").replace("</strong>", "")
        assert "Tuesday, March 4, 2025 at 2:00 PM CST" in body
        assert "Monday to Friday, 9:00 AM to 5:00 PM (America/Chicago)" in body
        assert ticket_status_link(body, env) == {"ticket_id": str(story.ticket_id), "email": "jane@acme.test"}
        assert "by-number" not in body, "customers get their page, not the staff URL"
        assert "reply to this email" in body.lower().replace("<strong>", "").replace("</strong>", "")
    assert "next business day" not in text
    [(filename, content_type, pdf)] = attachments(ack)
    assert (filename, content_type) == ("service-level-agreement.pdf", "application/pdf")
    assert pdf.startswith(b"%PDF-")

    [row] = await env.notifications()
    assert row.state == DeliveryState.SENT and row.sent_at is not None and row.attempts == 1
    assert (row.ticket_id, row.message_id, row.recipient, row.kind) == (
        story.ticket_id,
        ack["Message-ID"],
        "jane@acme.test",
        "acknowledgment",
    )

    # The same event delivered again (a re-publish after arq forgot the job): nothing more is sent.
    await env.redis.flushdb()
    await env.deliver(created)
    assert len(env.mail()) == 1


async def test_s2_after_hours_says_next_business_day_and_signed_organizations_get_no_pdf(env: Env) -> None:
    friday_evening = datetime(2025, 3, 8, 0, 30, tzinfo=UTC)  # Friday 18:30 in Chicago
    story = TicketStory(created_at=friday_evening, org=organization(sla_signed=True), channel="web")
    await env.deliver(story.created())
    [ack] = env.mail()
    text, _ = parts(ack)
    assert "outside our office hours" in text
    assert "next business day, Monday, March 10, 2025 at 9:00 AM CDT" in text
    assert "by Monday, March 10, 2025 at 1:00 PM CDT" in text
    assert ack["Auto-Submitted"] == "auto-generated"  # opened on the web: not a reply to mail
    assert attachments(ack) == []
    assert "signed service level agreement" not in text


async def test_conversation_is_threaded_internal_notes_stay_inside_and_closure_has_signed_links(
    env: Env,
) -> None:
    agent_id = uuid4()
    story = TicketStory(org=organization(sla_signed=True), assignee_id=agent_id)
    await env.deliver(agent_event(agent_id))  # known before the ticket: its mails name Alice
    await env.deliver(story.created())
    await env.deliver(story.message("Internal: check the toner", author_id=agent_id, visibility="internal"))
    await env.deliver(
        story.message("Please restart the printer.\nThen tell me <what> you see.", author_id=agent_id)
    )
    await env.deliver(story.message("Restarted, still offline.", author="customer"))
    await env.deliver(story.closed())

    # Opened already assigned (by staff): the acknowledgment names Alice, and Alice is told.
    assigned, *mails = sorted(env.mail(), key=lambda m: "Assigned to you" not in str(m["Subject"]))
    assert assigned["To"] == "alice@helpdesk.test"
    ack, reply, to_consultant, closure = mails
    assert "Alice Consultant is your consultant for this ticket" in parts(ack)[0]
    assert [m["To"] for m in (ack, reply, to_consultant, closure)] == [
        "jane@acme.test",
        "jane@acme.test",
        "alice@helpdesk.test",
        "jane@acme.test",
    ]
    # The agent's reply: from the person, not automatic, threaded under the acknowledgment.
    assert reply["Subject"] == "Re: [TKT-1] Printer offline"
    assert "Alice Consultant" in str(reply["From"])
    assert reply["Auto-Submitted"] is None
    assert reply["In-Reply-To"] == ack["Message-ID"]
    assert reply["References"] == ack["Message-ID"]
    text, html = parts(reply)
    assert "Please restart the printer.\nThen tell me <what> you see." in text
    assert "Then tell me &lt;what&gt; you see." in html and "<br>" in html
    assert "toner" not in "".join(str(m) for m in env.mail())
    # The consultant hears of the customer's answer, without a customer Reply-To token.
    assert "Restarted, still offline." in parts(to_consultant)[0]
    assert "http://127.0.0.1:8080/api/v1/tickets/by-number/TKT-1" in parts(to_consultant)[0]
    assert "ticket-status" not in str(to_consultant), "staff mail links to the staff URL"
    assert ticket_status_link(parts(reply)[0], env)["email"] == "jane@acme.test"
    assert to_consultant["Reply-To"] is None
    # The closure chains every earlier mail the customer got (never staff mail) and carries
    # signed happy and unhappy links; the consultant's mail threads under the customer's.
    assert closure["In-Reply-To"] == reply["Message-ID"]
    assert closure["References"].split() == [ack["Message-ID"], reply["Message-ID"]]
    assert to_consultant["In-Reply-To"] == reply["Message-ID"]
    text, html = parts(closure)
    links = [word for word in text.split() if "/api/v1/feedback/" in word]
    assert len(links) == 2 and all(link in html for link in links)
    ratings = []
    for link in links:
        assert link.startswith("http://127.0.0.1:8080/api/v1/feedback/")
        document = verify(link.rsplit("/", 1)[1], purpose="feedback", secret=SECRET, now=env.clock())
        assert document["ticket_id"] == str(story.ticket_id) and document["email"] == "jane@acme.test"
        ratings.append(document["rating"])
    assert ratings == ["happy", "unhappy"]


async def test_triage_assignment_tells_customer_and_consultant_once_with_the_call_task(env: Env) -> None:
    agent_id = uuid4()
    story = TicketStory(org=organization(sla_signed=True, tier="agreement"))
    triaged = ticket_triaged(
        ticket_id=story.ticket_id,
        number=story.number,
        priority="P1",
        assignee=agent_ref(id=agent_id),
        first_response_due_at=datetime(2025, 3, 4, 18, 0, tzinfo=UTC),
        resolution_due_at=datetime(2025, 3, 5, 18, 0, tzinfo=UTC),
        call_customer=True,
        breakdown=triage_breakdown(impact="team", support_tier="agreement", tier_adjustment=1),
        organization=story.org,
    )
    await env.deliver(agent_event(agent_id), story.created())
    await env.deliver(triaged)
    assert len(env.mail()) == 1, "triage's decision alone tells nobody of a consultant"
    # ticket_api applies the assignment: its ticket.updated is what tells the customer and the
    # consultant; a repeat of it tells nobody again.
    applied = story.assigned(agent_id, priority="P1")
    await env.deliver(applied)
    await env.deliver(story.assigned(agent_id, priority="P1"))

    # The two assignment mails are sent by concurrent jobs: their arrival order is not fixed.
    to_consultant, to_customer = sorted(env.mail()[1:], key=lambda m: str(m["To"]))
    assert to_customer["To"] == "jane@acme.test"
    customer_text, _ = parts(to_customer)
    assert "Alice Consultant" in customer_text
    [booking] = [word for word in customer_text.split() if word.endswith("/appointment")]
    token = booking.removeprefix("http://127.0.0.1:8080/api/v1/ticket-status/").removesuffix("/appointment")
    document = verify(token, purpose=TICKET_STATUS, secret=SECRET, now=env.clock())
    assert (document["ticket_id"], document["email"]) == (str(story.ticket_id), "jane@acme.test")
    assert to_consultant["To"] == "alice@helpdesk.test"
    consultant_text, _ = parts(to_consultant)
    assert "P1" in to_consultant["Subject"]
    assert "TASK: call the customer" in consultant_text
    assert "Tuesday, March 4, 2025 at 12:00 PM CST" in consultant_text


async def test_a_manual_reassignment_notifies_at_once_without_triages_task(env: Env) -> None:
    """A person's assignment is the only source of its news (no richer copy from triage
    follows): both mails go at once, the consultant's without a call task or due time."""
    agent_id = uuid4()
    story = TicketStory(org=organization(sla_signed=True))
    await env.deliver(agent_event(agent_id, name="Bob", email="bob@helpdesk.test"), story.created())
    await env.deliver(story.assigned(agent_id, by_triage=False, priority=None))
    to_bob, to_jane = sorted(env.mail()[1:], key=lambda m: str(m["To"]))
    assert (to_bob["To"], to_jane["To"]) == ("bob@helpdesk.test", "jane@acme.test")
    bob_text, _ = parts(to_bob)
    assert "First response due" not in bob_text and "call the customer" not in bob_text
    assert to_jane["In-Reply-To"] == env.mail()[0]["Message-ID"], "it answers the acknowledgment"


async def test_status_updates_only_for_news(env: Env) -> None:
    assert status_change_is_news("open", "pending_customer")
    assert status_change_is_news("closed", "open")
    assert not status_change_is_news("new", "open")
    assert not status_change_is_news("pending_customer", "open")
    assert not status_change_is_news("open", "closed")

    story = TicketStory(org=organization(sla_signed=True))
    await env.deliver(story.created(), story.status_changed("new", "open"))
    await env.deliver(story.status_changed("open", "pending_customer"))
    _ack, update = env.mail()
    assert update["Subject"] == "[TKT-1] Waiting for your reply: Printer offline"


async def test_a_requested_sign_in_link_is_mailed_and_works(env: Env) -> None:
    contact_id = uuid4()
    await env.deliver(customer_sign_in_requested(contact_id=contact_id, nonce="n-1", ticket_number="TKT-1"))
    [mail] = env.mail()
    text, _ = parts(mail)
    [url] = [word for word in text.split() if "#token=" in word]
    assert read_token(url.split("#token=", 1)[1], secret=SECRET)[:2] == (contact_id, "n-1")
