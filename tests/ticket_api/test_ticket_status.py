"""The pages behind the links of customer mail: the ticket's state and public conversation for
its contact, nothing internal, and booking time with its consultant by the API's rules; forged,
altered, expired, other-purpose or someone else's links are refused; what people wrote is
escaped."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from services.ticket_api.feedback.service import PURPOSE as FEEDBACK
from shared.signed_links import TICKET_STATUS, sign
from shared.time_format import format_instant
from tests.ticket_api.conftest import Actors, new_ticket
from tests.ticket_api.test_appointments_api import assigned_ticket


def link(
    api: Actors,
    ticket: dict[str, Any],
    *,
    email: str = "jane@acme.test",
    expires_in: timedelta = timedelta(days=180),
    secret: str | None = None,
    purpose: str = TICKET_STATUS,
) -> str:
    token = sign(
        {"ticket_id": ticket["id"], "email": email},
        purpose=purpose,
        secret=secret or api.runtime.settings.secret_key.get_secret_value(),
        expires_at=datetime.now(UTC) + expires_in,
    )
    return f"/api/v1/ticket-status/{token}"


async def test_the_contact_sees_state_consultant_and_the_public_conversation_only(api: Actors) -> None:
    ticket = (
        await api.client.post(
            "/api/v1/tickets",
            json=new_ticket(subject="Printer <script>alert(1)</script> offline"),
            headers=api.portal_a,
        )
    ).json()
    messages = f"/api/v1/tickets/{ticket['id']}/messages"
    await api.client.patch(
        f"/api/v1/tickets/{ticket['id']}", json={"assignee_id": str(api.agent_id)}, headers=api.agent
    )
    await api.client.post(messages, json={"body": "Restart it, please."}, headers=api.agent)
    await api.client.post(
        messages, json={"body": "Known firmware bug", "visibility": "internal"}, headers=api.agent
    )
    await api.client.post(messages, json={"body": "Done, still <b>broken</b>"}, headers=api.portal_a)

    page = await api.client.get(link(api, ticket))

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    text = page.text
    assert ticket["number"] in text
    assert "Printer &lt;script&gt;alert(1)&lt;/script&gt; offline" in text and "<script>" not in text
    assert "Your consultant: Alice" in text
    assert "a consultant is working on it" in text  # the agent's public reply opened it
    conversation = [
        "The printer stopped answering. Urgent!",
        "Restart it, please.",
        "Done, still &lt;b&gt;broken&lt;/b&gt;",
    ]
    positions = [text.index(body) for body in conversation]
    assert positions == sorted(positions), "oldest first, the description opening it"
    assert "Known firmware bug" not in text, "internal notes never show"
    assert "Jane Doe ·" in text and "Alice ·" in text, "who wrote each turn"
    # The URL carries the key: not cached, not indexed, not framed, not sent on as a Referer.
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


async def test_forged_altered_expired_other_purpose_or_someone_elses_links_are_refused(api: Actors) -> None:
    ticket = (await api.client.post("/api/v1/tickets", json=new_ticket(), headers=api.portal_a)).json()
    good = link(api, ticket)
    assert (await api.client.get(good)).status_code == 200
    bad_links = {
        "forged": link(api, ticket, secret="a guess"),
        "altered": good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB"),
        "expired": link(api, ticket, expires_in=timedelta(seconds=-1)),
        "a feedback link": link(api, ticket, purpose=FEEDBACK),
        "someone else's address": link(api, ticket, email="mallory@evil.test"),
        "no such ticket": link(api, {"id": "00000000-0000-7000-8000-000000000000"}),
    }
    for name, path in bad_links.items():
        opened = await api.client.get(path)
        assert opened.status_code == 400, name
        assert "Printer offline" not in opened.text, name
    expired = await api.client.get(bad_links["expired"])
    assert "expired" in expired.text


def offered_starts(page: str) -> list[str]:
    return re.findall(r'name="starts_at" required value="([^"]+)"', page)


async def booked(api: Actors, ticket: dict[str, Any]) -> list[dict[str, Any]]:
    answer = await api.client.get(f"/api/v1/tickets/{ticket['id']}/appointments", headers=api.agent)
    items: list[dict[str, Any]] = answer.json()
    return items


async def test_booking_from_the_link_follows_the_apis_rules(api: Actors) -> None:
    ticket = await assigned_ticket(api, sign=False)
    booking = link(api, ticket) + "/appointment"

    # No signed SLA yet: the page says so first, and offers no time it would then refuse.
    unsigned_form = await api.client.get(booking)
    assert unsigned_form.status_code == 200 and "no signed SLA on file" in unsigned_form.text
    assert offered_starts(unsigned_form.text) == []
    await api.client.patch(
        f"/api/v1/organizations/{api.org_a['id']}", json={"sla_signed": True}, headers=api.admin
    )
    form = await api.client.get(booking)
    assert form.status_code == 200, form.text
    assert "Book time with Alice" in form.text and "times in America/Chicago" in form.text
    assert "hours before" in form.text, "the cancellation policy"
    assert "no signed SLA" not in form.text
    starts = offered_starts(form.text)
    assert starts and all(datetime.fromisoformat(s) > datetime.now(UTC) for s in starts)
    assert await booked(api, ticket) == [], "opening the page (a mail scanner) books nothing"

    # A page opened before the SLA was withdrawn still cannot book past the rule.
    await api.client.patch(
        f"/api/v1/organizations/{api.org_a['id']}", json={"sla_signed": False}, headers=api.admin
    )
    unsigned = await api.client.post(booking, data={"starts_at": starts[0]})
    assert unsigned.status_code == 409 and "no signed SLA on file" in unsigned.text
    await api.client.patch(
        f"/api/v1/organizations/{api.org_a['id']}", json={"sla_signed": True}, headers=api.admin
    )
    done = await api.client.post(booking, data={"starts_at": starts[0]})
    assert done.status_code == 200 and "Booked" in done.text and "jane@acme.test" in done.text
    [appointment] = await booked(api, ticket)
    assert appointment["starts_at"] == datetime.fromisoformat(starts[0]).astimezone(UTC).isoformat().replace(
        "+00:00", "Z"
    )
    assert appointment["status"] == "booked" and appointment["agent_id"] == str(api.agent_id)
    assert "Appointment booked:" in (await api.client.get(link(api, ticket))).text

    again = await api.client.post(booking, data={"starts_at": starts[0]})
    assert again.status_code == 409, "no double booking"
    assert starts[0] not in offered_starts((await api.client.get(booking)).text)
    nonsense = await api.client.post(booking, data={"starts_at": "next tuesday"})
    assert nonsense.status_code == 422
    forged = await api.client.post(
        link(api, ticket, secret="a guess") + "/appointment", data={"starts_at": starts[1]}
    )
    assert forged.status_code == 400
    assert len(await booked(api, ticket)) == 1


async def test_the_booking_page_says_why_when_there_is_nothing_to_book(api: Actors) -> None:
    unassigned = (await api.client.post("/api/v1/tickets", json=new_ticket(), headers=api.portal_a)).json()
    page = await api.client.get(link(api, unassigned) + "/appointment")
    assert page.status_code == 409 and "no consultant yet" in page.text
    status = await api.client.get(link(api, unassigned))
    assert "Book time" not in status.text, "not offered before a consultant is assigned"


async def test_the_customer_writes_to_us_from_the_page_as_a_reply_by_mail_would(api: Actors) -> None:
    ticket = (await api.client.post("/api/v1/tickets", json=new_ticket(), headers=api.portal_a)).json()
    path = f"/api/v1/tickets/{ticket['id']}"
    await api.client.post(f"{path}/messages", json={"body": "What does the display show?"}, headers=api.agent)
    waiting = await api.client.post(f"{path}/status", json={"status": "pending_customer"}, headers=api.agent)
    assert waiting.status_code == 200, waiting.text
    page = link(api, ticket)
    shown = (await api.client.get(page)).text
    assert 'name="body"' in shown, "the page offers to write"
    assert "Waiting for your reply" in shown, "in the words of the status mail"

    sent = await api.client.post(page + "/messages", data={"body": "  It shows E-17.\n"})

    assert sent.status_code == 303 and sent.headers["location"] == "../" + page.rsplit("/", 1)[1]
    messages = (await api.client.get(f"{path}/messages", headers=api.agent)).json()["items"]
    assert (messages[-1]["body"], messages[-1]["author_kind"], messages[-1]["visibility"]) == (
        "It shows E-17.",
        "customer",
        "public",
    )
    assert messages[-1]["author_id"] == ticket["contact_id"]
    assert (await api.client.get(path, headers=api.agent)).json()["status"] == "open", "resumed"
    assert "ticket.message_added" in await api.outbox_types()
    assert "It shows E-17." in (await api.client.get(page)).text

    assert (await api.client.post(page + "/messages", data={"body": "   "})).status_code == 422
    forged = link(api, ticket, secret="a guess") + "/messages"
    assert (await api.client.post(forged, data={"body": "Hi from Mallory"})).status_code == 400
    await api.client.post(f"{path}/status", json={"status": "closed"}, headers=api.agent)
    closed = await api.client.post(page + "/messages", data={"body": "One more thing"})
    assert closed.status_code == 409 and "closed" in closed.text
    assert 'name="body"' not in (await api.client.get(page)).text
    after = (await api.client.get(f"{path}/messages", headers=api.agent)).json()["items"]
    assert len(after) == len(messages), "nothing written by the refused ones"


async def test_a_customer_abroad_reads_times_in_their_organizations_zone_as_in_our_mail(api: Actors) -> None:
    moved = await api.client.patch(
        f"/api/v1/organizations/{api.org_a['id']}", json={"timezone": "Europe/Berlin"}, headers=api.admin
    )
    assert moved.status_code == 200, moved.text
    ticket = (await api.client.post("/api/v1/tickets", json=new_ticket(), headers=api.portal_a)).json()
    text = (await api.client.get(link(api, ticket))).text
    opened = datetime.fromisoformat(ticket["created_at"])
    assert f"Opened {format_instant(opened, 'Europe/Berlin')}" in text
    assert re.search(r"Opened \w+day, \w+ \d+, \d{4} at \d+:\d\d [AP]M CES?T", text), text
    assert "(UTC)" not in text and "(Europe/Berlin)" not in text


async def test_the_booking_page_says_plainly_when_the_consultant_is_in_another_zone(api: Actors) -> None:
    ticket = await assigned_ticket(api)
    booking = link(api, ticket) + "/appointment"
    assert "another timezone" not in (await api.client.get(booking)).text
    await api.client.patch(
        f"/api/v1/agents/{api.agent_id}", json={"timezone": "Asia/Tokyo"}, headers=api.admin
    )
    page = (await api.client.get(booking)).text
    assert (
        "Alice works in another timezone (Asia/Tokyo). The times are shown in yours (America/Chicago)" in page
    )
