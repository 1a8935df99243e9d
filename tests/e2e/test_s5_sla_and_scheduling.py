"""S5 — SLA document and scheduling.

Acme cannot book an appointment before its SLA is signed (a clear 409). Jane replies with the
signed PDF attached: "signed SLA received — needs review", and an agent confirms it. Jane,
signed in with a magic link, books a slot of her consultant's availability: she and the
consultant each get a calendar invite (METHOD:REQUEST) with the cancellation and reschedule
policy; moving it sends an update (same UID, higher SEQUENCE), cancelling a METHOD:CANCEL."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest

from tests.e2e.actors import Api, problem
from tests.e2e.cast import CONSULTANTS, Cast
from tests.e2e.conftest import JANE, EmailedTicket, SignedSla, triaged
from tests.e2e.mailbox import Mail
from tests.e2e.world import CHICAGO, Scene

pytestmark = pytest.mark.stack

POLICY = (
    "Appointments can be rescheduled or cancelled free of charge until 24 hours before they start. "
    "Later cancellations and missed appointments may be billed as scheduled."
)


def offered(jane: Api, ticket_id: str, first_day: date, days: int = 2) -> list[dict[str, Any]]:
    slots = jane.get(
        f"/api/v1/tickets/{ticket_id}/appointment-slots",
        params={"from": first_day.isoformat(), "days": days, "duration_minutes": 60},
    )
    assert slots["policy"] == POLICY
    found: list[dict[str, Any]] = slots["slots"]
    assert found, "no free slot offered"
    return found


def test_booking_is_refused_until_the_sla_is_signed(
    tuesday: Scene, cast: Cast, jane_ticket: EmailedTicket, jane: Api
) -> None:
    organization = cast.api(tuesday, "admin").get(f"/api/v1/organizations/{cast.organizations['acme']}")
    if organization["sla_signed"]:
        pytest.skip("Acme's SLA was signed earlier in this run (run this test alone to see the refusal)")
    triaged(tuesday, cast, jane_ticket.id)
    slot = offered(jane, jane_ticket.id, date(2026, 4, 2))[0]
    refused = jane.call(
        "POST", f"/api/v1/tickets/{jane_ticket.id}/appointments", json={"starts_at": slot["starts_at"]}
    )
    assert refused.status_code == 409
    body = problem(refused)
    assert (
        body["type"].endswith("sla-not-signed") and body["title"] == "A signed SLA is needed before booking"
    )
    assert "Acme Corp has no signed SLA on file yet" in body["detail"]
    assert "signed SLA (PDF) attached" in body["detail"]
    assert cast.api(tuesday, "admin").get(f"/api/v1/tickets/{jane_ticket.id}/appointments") == []


def test_the_signed_sla_comes_back_by_email_and_an_agent_confirms_it(
    tuesday: Scene, cast: Cast, jane_ticket: EmailedTicket, acme_signed_sla: SignedSla
) -> None:
    inbound = acme_signed_sla.inbound
    assert (inbound["outcome"], inbound["ticket_id"]) == ("message_added", jane_ticket.id)
    assert inbound["needs_review"] is True
    assert "signed SLA received — needs review" in inbound["review_reason"]
    assert acme_signed_sla.review["state"] == "needs_review"
    assert acme_signed_sla.review["organization_id"] == cast.organizations["acme"]
    attachments = cast.api(tuesday, "admin").get(f"/api/v1/tickets/{jane_ticket.id}/attachments")
    document = next(a for a in attachments if a["id"] == acme_signed_sla.review["attachment_id"])
    assert (document["filename"], document["content_type"]) == ("acme-signed-sla.pdf", "application/pdf")
    confirmed = acme_signed_sla.confirmed
    assert confirmed["state"] == "confirmed" and confirmed["reviewed_by"]
    organization = cast.api(tuesday, "admin").get(f"/api/v1/organizations/{cast.organizations['acme']}")
    assert organization["sla_signed"] is True and organization["sla_signed_at"]


def invite_of(mail: Mail) -> tuple[str, Any]:
    calendar = mail.calendar()
    (event,) = calendar.walk("VEVENT")
    return str(calendar["METHOD"]), event


def test_jane_books_moves_and_cancels_with_invites_for_both(
    tuesday: Scene, cast: Cast, jane_ticket: EmailedTicket, acme_signed_sla: SignedSla, jane: Api
) -> None:
    ticket = triaged(tuesday, cast, jane_ticket.id)
    consultant = CONSULTANTS[next(k for k, v in cast.consultants.items() if v == ticket["assignee_id"])]
    slots = offered(jane, jane_ticket.id, date(2026, 4, 2))  # Thursday and Friday
    first = slots[0]
    later = next(s for s in slots if s["starts_at"][:10] != first["starts_at"][:10])

    since = tuesday.mailbox.mark()
    booked = jane.post(
        f"/api/v1/tickets/{jane_ticket.id}/appointments", json={"starts_at": first["starts_at"]}
    )
    assert booked["status"] == "booked" and booked["sequence"] == 0
    assert booked["agent_id"] == ticket["assignee_id"] and booked["policy"] == POLICY
    start = datetime.fromisoformat(first["starts_at"])
    uid = None
    for recipient, kind in ((JANE, "appointment_customer"), (consultant["email"], "appointment_consultant")):
        mail = tuesday.mailbox.one(since, to=recipient, kind=kind)
        assert mail.ticket == jane_ticket.number
        assert "Appointments can be rescheduled or cancelled free of charge" in mail.text
        assert mail.attachment("text/calendar").params.get("method") == "REQUEST"
        method, event = invite_of(mail)
        assert method == "REQUEST"
        assert int(event["SEQUENCE"]) == 0 and str(event["STATUS"]) == "CONFIRMED"
        assert event.decoded("DTSTART") == start and event.decoded("DTSTART").tzinfo is not None
        assert (event.decoded("DTEND") - event.decoded("DTSTART")).total_seconds() == 3600
        assert str(event["ORGANIZER"]) == "mailto:support@helpdesk.test"
        assert {str(a) for a in event["ATTENDEE"]} == {f"mailto:{JANE}", f"mailto:{consultant['email']}"}
        assert POLICY in str(event["DESCRIPTION"])
        assert uid in (None, str(event["UID"]))
        uid = str(event["UID"])
    # Jane's invite is in her own timezone (Chicago): Thursday morning.
    assert start.astimezone(CHICAGO).strftime("%A") == "Thursday"

    since = tuesday.mailbox.mark()
    moved = jane.post(
        f"/api/v1/appointments/{booked['id']}/reschedule", expect=200, json={"starts_at": later["starts_at"]}
    )
    assert moved["sequence"] == 1
    for recipient in (JANE, consultant["email"]):
        method, event = invite_of(tuesday.mailbox.one(since, to=recipient, subject=jane_ticket.number))
        assert (method, str(event["UID"]), int(event["SEQUENCE"])) == ("REQUEST", uid, 1)
        assert event.decoded("DTSTART") == datetime.fromisoformat(later["starts_at"])

    since = tuesday.mailbox.mark()
    cancelled = jane.post(
        f"/api/v1/appointments/{booked['id']}/cancel", expect=200, json={"reason": "The printer works again"}
    )
    assert (cancelled["status"], cancelled["sequence"], cancelled["late_cancellation"]) == (
        "cancelled",
        2,
        False,
    )
    for recipient in (JANE, consultant["email"]):
        mail = tuesday.mailbox.one(since, to=recipient, subject=jane_ticket.number)
        method, event = invite_of(mail)
        assert (method, str(event["UID"]), int(event["SEQUENCE"])) == ("CANCEL", uid, 2)
        assert str(event["STATUS"]) == "CANCELLED"
        assert "The printer works again" in str(event["DESCRIPTION"])
    # Both times are free again.
    free = {s["starts_at"] for s in offered(jane, jane_ticket.id, date(2026, 4, 2))}
    assert {first["starts_at"], later["starts_at"]} <= free
