"""Appointment changes become mail to the customer and the consultant with a calendar invite,
read back from the SMTP server and parsed with the icalendar library."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from uuid import uuid4
from zoneinfo import ZoneInfo

from icalendar import Calendar

from services.notifier.calendar_invites import Organizer, build_invite, zone
from shared import events as ev
from shared.signed_links import TICKET_STATUS, verify
from tests.fixtures.events import BUILDERS
from tests.notifier.conftest import SECRET, Env, TicketStory, organization
from tests.notifier.test_email_flow import parts

POLICY = "Cancel or move an appointment up to 24 hours before it starts; later cancellations are billed."
BERLIN = ZoneInfo("Europe/Berlin")


class AppointmentStory:
    """One appointment's events as ticket_api's scheduling sends them (sequence grows)."""

    def __init__(self, story: TicketStory) -> None:
        self.story = story
        self.appointment_id = uuid4()
        self.sequence = -1
        self.agent = ev.AgentRef(id=uuid4(), name="Alice Consultant", email="alice@helpdesk.test")
        self.contact = ev.ContactRef(id=uuid4(), email="jane@acme.test", name="Jane Doe")

    def event(
        self, event_type: ev.EventType, starts_at: datetime, *, late: bool = False, reason: str | None = None
    ) -> ev.Event:
        self.sequence += 1
        cancelled = event_type == ev.EventType.APPOINTMENT_CANCELLED
        return BUILDERS[event_type](
            appointment_id=self.appointment_id,
            sequence=self.sequence,
            status="cancelled" if cancelled else "booked",
            ticket_id=self.story.ticket_id,
            number=self.story.number,
            starts_at=starts_at,
            timezone="Europe/Berlin",
            agent=self.agent,
            contact=self.contact,
            organization=self.story.org,
            policy=POLICY,
            late_cancellation=late,
            cancel_reason=reason,
        )


def invite_of(message: EmailMessage) -> tuple[str, Calendar]:
    [part] = [p for p in message.iter_attachments() if p.get_content_type() == "text/calendar"]
    assert part.get_filename() == "invite.ics"
    assert part.get_param("charset") == "UTF-8"
    raw = part.get_payload(decode=True)
    assert isinstance(raw, bytes)
    return str(part.get_param("method")), Calendar.from_ical(raw)


def without_links(calendar: Calendar) -> bytes:
    """The invite minus its ticket link (each side gets its own: URL and the DESCRIPTION's line)."""
    [event] = calendar.events
    link = str(event.pop("URL"))
    event["DESCRIPTION"] = str(event["DESCRIPTION"]).replace(link, "<link>")
    return bytes(calendar.to_ical())


async def test_booking_moving_and_cancelling_send_invites_both_sides_can_import(env: Env) -> None:
    story = TicketStory(org=organization(sla_signed=True))
    appointment = AppointmentStory(story)
    first = datetime(2025, 3, 11, 15, 0, tzinfo=UTC)  # 16:00 in Berlin (CET)
    moved = datetime(2025, 4, 1, 13, 0, tzinfo=UTC)  # 15:00 in Berlin (CEST, after the DST switch)
    booked = appointment.event(ev.EventType.APPOINTMENT_BOOKED, first)
    rescheduled = appointment.event(ev.EventType.APPOINTMENT_RESCHEDULED, moved)
    cancelled = appointment.event(
        ev.EventType.APPOINTMENT_CANCELLED, moved, late=True, reason="Printer works again"
    )
    await env.deliver(story.created())
    await env.deliver(booked)
    await env.deliver(rescheduled)
    await env.deliver(cancelled)
    await env.deliver(booked, rescheduled)  # delivered again: nothing more

    ack, *mails = env.mail()
    assert len(mails) == 6
    rounds = [sorted(mails[i : i + 2], key=lambda m: str(m["To"])) for i in range(0, 6, 2)]
    uids, sequences = set(), []
    for (to_consultant, to_customer), method, start, status in zip(
        rounds,
        ("REQUEST", "REQUEST", "CANCEL"),
        (datetime(2025, 3, 11, 16, tzinfo=BERLIN), *[datetime(2025, 4, 1, 15, tzinfo=BERLIN)] * 2),
        ("CONFIRMED", "CONFIRMED", "CANCELLED"),
        strict=True,
    ):
        assert (to_consultant["To"], to_customer["To"]) == ("alice@helpdesk.test", "jane@acme.test")
        invites = [invite_of(to_customer), invite_of(to_consultant)]
        links = [str(calendar.events[0]["URL"]) for _, calendar in invites]
        token = links[0].removeprefix("http://127.0.0.1:8080/api/v1/ticket-status/")
        assert (
            verify(token, purpose=TICKET_STATUS, secret=SECRET, now=env.clock())["email"] == "jane@acme.test"
        )
        assert links[1] == "http://127.0.0.1:8080/api/v1/tickets/by-number/TKT-1", "staff open it as staff"
        assert without_links(invites[0][1]) == without_links(invites[1][1]), "otherwise the same invite"
        content_method, calendar = invites[0]
        assert content_method == method == calendar["METHOD"]
        assert calendar["VERSION"] == "2.0" and calendar["PRODID"]
        [event] = calendar.events
        uids.add(str(event["UID"]))
        sequences.append(int(event["SEQUENCE"]))
        assert event["STATUS"] == status
        assert event.start == start and event.start.tzinfo.key == "Europe/Berlin"
        assert event["DTSTART"].params["TZID"] == "Europe/Berlin"
        assert [tz.tz_name for tz in calendar.timezones] == ["Europe/Berlin"]
        assert event.end - event.start == timedelta(hours=1)
        assert "[TKT-1]" in str(event["SUMMARY"])
        assert str(event["ORGANIZER"]) == "mailto:support@helpdesk.test"
        attendees = {str(a): a.params for a in event.attendees}
        assert attendees["mailto:jane@acme.test"]["PARTSTAT"] == "NEEDS-ACTION"
        assert attendees["mailto:alice@helpdesk.test"]["PARTSTAT"] == "ACCEPTED"
        assert all(p["ROLE"] == "REQ-PARTICIPANT" for p in attendees.values())
        assert POLICY in str(event["DESCRIPTION"])
        # Mail like any other ticket mail: tagged, threaded, the policy quoted in both parts.
        for mail in (to_customer, to_consultant):
            assert "[TKT-1]" in mail["Subject"]
            assert mail["References"].split()[0] == ack["Message-ID"]
            assert all(POLICY in body for body in parts(mail))
        assert to_customer["Reply-To"] is not None and to_consultant["Reply-To"] is None
    assert len(uids) == 1 and sequences == [0, 1, 2]

    _, _, (cancel_consultant, cancel_customer) = rounds
    assert "cancelled" in cancel_customer["Subject"].lower()
    customer_text, customer_html = parts(cancel_customer)
    assert "late cancellation" in customer_text and "late cancellation" in customer_html
    assert "Printer works again" in customer_text
    assert "LATE CANCELLATION" in parts(cancel_consultant)[0]
    assert "Tuesday, April 1, 2025 at 3:00 PM CEST" in customer_text
    # The consultant reads it in their own zone (the office's until notifier knows theirs), with
    # the customer's time beside it.
    consultant_text = parts(rounds[1][0])[0]
    assert "When:     Tuesday, April 1, 2025 at 8:00 AM CDT to 9:00 AM CDT" in consultant_text
    assert "Tuesday, April 1, 2025 at 3:00 PM CEST the customer's time" in consultant_text


async def test_a_change_arriving_after_a_later_one_is_not_mailed(env: Env) -> None:
    appointment = AppointmentStory(TicketStory(org=organization(sla_signed=True)))
    at = datetime(2025, 3, 11, 15, 0, tzinfo=UTC)
    booked = appointment.event(ev.EventType.APPOINTMENT_BOOKED, at)
    rescheduled = appointment.event(ev.EventType.APPOINTMENT_RESCHEDULED, at + timedelta(days=1))
    cancelled = appointment.event(ev.EventType.APPOINTMENT_CANCELLED, at + timedelta(days=1))
    await env.deliver(booked)
    await env.deliver(cancelled)
    await env.deliver(rescheduled)  # late: its REQUEST would bring the cancelled meeting back
    methods = sorted(invite_of(m)[0] for m in env.mail())
    assert methods == ["CANCEL", "CANCEL", "REQUEST", "REQUEST"]


def test_an_unknown_timezone_falls_back_to_utc_and_the_bytes_are_stable() -> None:
    appointment = AppointmentStory(TicketStory())
    event = appointment.event(ev.EventType.APPOINTMENT_BOOKED, datetime(2025, 10, 26, 1, 30, tzinfo=UTC))
    payload = ev.payload_of(event, ev.AppointmentV1).model_copy(update={"timezone": "Mars/Olympus"})
    assert zone("Mars/Olympus") is UTC
    options = {
        "organizer": Organizer("support@helpdesk.test", "Support"),
        "stamp": datetime(2025, 10, 1, tzinfo=UTC),
        "ticket_url": "http://127.0.0.1:8080/t/TKT-1",
        "prodid": "-//Helpdesk//EN",
    }
    ics = build_invite(payload, **options)  # type: ignore[arg-type]
    assert ics == build_invite(payload, **options)  # type: ignore[arg-type]
    [vevent] = Calendar.from_ical(ics).events
    assert vevent.start == datetime(2025, 10, 26, 1, 30, tzinfo=UTC) and not Calendar.from_ical(ics).timezones
