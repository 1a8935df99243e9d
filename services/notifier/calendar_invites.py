"""Calendar invites (iCalendar, RFC 5545; iTIP methods, RFC 5546) for appointments, built with
the ``icalendar`` library. Pure: the same appointment and stamp give the same bytes.

Who organizes: the support address (the mail's From), with the consultant and the customer as
attendees. Calendar clients apply an update or a cancellation only when its ORGANIZER matches
the one they stored, and they treat an invite whose ORGANIZER is the recipient as the
recipient's own meeting (Outlook: "you are the organizer", no import; Gmail: no RSVP), so the
consultant, too, must be an attendee. Mail from one address organizing as another is also
shown as "on behalf of" or flagged as spoofing by Gmail and Outlook. So: one organizer for the
whole life of the appointment, the address the mail comes from. The consultant is an attendee
who has accepted (the slot came from their own availability; no answer asked); the customer
is asked to answer (RSVP), so their client shows Accept/Decline and files the event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from icalendar import Calendar, Event, Timezone, vCalAddress

from shared.events import AppointmentV1

CANCELLED = "cancelled"
ICS_FILENAME = "invite.ics"


class Method(StrEnum):
    REQUEST = "REQUEST"
    CANCEL = "CANCEL"


@dataclass(frozen=True)
class Organizer:
    email: str
    name: str


def method_for(appointment: AppointmentV1) -> Method:
    """CANCEL for a cancelled appointment, REQUEST (new or changed) otherwise."""
    return Method.CANCEL if appointment.status == CANCELLED else Method.REQUEST


def zone(name: str) -> tzinfo:
    """The IANA zone ``name``; UTC when it is unknown (a wrong clock beats no invite)."""
    try:
        found = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC
    return UTC if found.key in ("UTC", "Etc/UTC", "Etc/UCT", "UCT", "Zulu") else found


@lru_cache(maxsize=64)
def _vtimezone_ical(name: str, first_year: int, last_year: int) -> bytes:
    # Generating a VTIMEZONE walks the zone's transitions: cached per zone and years.
    component = Timezone.from_tzinfo(
        ZoneInfo(name), tzid=name, first_date=date(first_year, 1, 1), last_date=date(last_year + 1, 1, 1)
    )
    return bytes(component.to_ical())


def vtimezone(name: str, start: datetime, end: datetime) -> Timezone:
    """A VTIMEZONE for ``name`` covering the years from ``start`` to ``end``."""
    parsed = Timezone.from_ical(_vtimezone_ical(name, start.year, end.year))
    assert isinstance(parsed, Timezone)
    return parsed


def _address(email: str, name: str | None, **params: str) -> vCalAddress:
    address = vCalAddress(f"mailto:{email}")
    if name:
        address.params["CN"] = name
    for key, value in params.items():
        address.params[key.replace("_", "-").upper()] = value
    return address


def describe(appointment: AppointmentV1, *, ticket_url: str) -> str:
    """The invite's DESCRIPTION: what it is about, who meets, the policy, a cancellation's why."""
    lines = [
        f"Appointment about ticket {appointment.number}: {appointment.subject}",
        f"Consultant: {appointment.agent.name} <{appointment.agent.email}>",
        f"Customer: {appointment.contact.name or appointment.contact.email} <{appointment.contact.email}>",
        f"Ticket: {ticket_url}",
    ]
    if appointment.status == CANCELLED:
        lines.append("")
        lines.append("This appointment has been cancelled.")
        if appointment.cancel_reason:
            lines.append(f"Reason: {appointment.cancel_reason}")
        if appointment.late_cancellation:
            lines.append("It was cancelled later than the policy allows (a late cancellation).")
    lines += ["", f"Cancellation and reschedule policy: {appointment.policy}"]
    return "\n".join(lines)


def build_invite(
    appointment: AppointmentV1,
    *,
    organizer: Organizer,
    stamp: datetime,
    ticket_url: str,
    prodid: str,
) -> bytes:
    """The VCALENDAR for ``appointment`` after its latest change: METHOD REQUEST or CANCEL, one
    VEVENT (stable UID, SEQUENCE, DTSTART/DTEND in the customer's timezone with its VTIMEZONE)."""
    method = method_for(appointment)
    local = zone(appointment.timezone)
    start = appointment.starts_at.astimezone(local)
    end = appointment.ends_at.astimezone(local)
    cancelled = method is Method.CANCEL

    event = Event()
    event.add("uid", appointment.uid)
    event.add("sequence", appointment.sequence)
    event.add("dtstamp", stamp.astimezone(UTC))
    event.add("last-modified", stamp.astimezone(UTC))
    event.add("dtstart", start)
    event.add("dtend", end)
    event.add("summary", f"[{appointment.number}] Appointment: {appointment.subject}")
    event.add("description", describe(appointment, ticket_url=ticket_url))
    event.add("url", ticket_url)
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    event.add("transp", "TRANSPARENT" if cancelled else "OPAQUE")
    event.add("organizer", _address(organizer.email, organizer.name))
    event.add(
        "attendee",
        _address(
            appointment.contact.email,
            appointment.contact.name,
            cutype="INDIVIDUAL",
            role="REQ-PARTICIPANT",
            partstat="NEEDS-ACTION",
            rsvp="FALSE" if cancelled else "TRUE",
        ),
    )
    event.add(
        "attendee",
        _address(
            appointment.agent.email,
            appointment.agent.name,
            cutype="INDIVIDUAL",
            role="REQ-PARTICIPANT",
            partstat="ACCEPTED",
            rsvp="FALSE",
        ),
    )

    calendar = Calendar()
    calendar.add("prodid", prodid)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", method.value)
    if isinstance(local, ZoneInfo):
        calendar.add_component(vtimezone(local.key, start, end))
    calendar.add_component(event)
    return bytes(calendar.to_ical())
