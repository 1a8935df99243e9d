"""The pages behind the links of customer mail (no sign-in: the signed link is the key; see
services.ticket_api.ticket_status): the ticket's page (where the customer may also write to
us), and booking time with its consultant."""

from __future__ import annotations

from datetime import datetime
from html import escape
from itertools import groupby
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from services.ticket_api import scheduling, service, ticket_status
from services.ticket_api.deps import AppSettings, Uow
from services.ticket_api.errors import TicketLinkInvalid
from services.ticket_api.models import AppointmentBook, MessageCreate, SlotList
from services.ticket_api.pages import LinkToken, page
from services.ticket_api.settings import Settings
from services.ticket_api.ticket_status import TicketStatusView
from services.ticket_api.views import ticket_number
from shared.clock import utcnow
from shared.logging import request_id_var
from shared.problems import Problem
from shared.time_format import format_clock, format_day, format_instant
from shared.vocabulary import TicketStatus

router = APIRouter(tags=["ticket status"])

INVALID: dict[int | str, dict[str, Any]] = {
    400: {"description": "the link is forged, altered, expired or not the ticket's contact's"}
}
# What the booking page offers: the next two weeks, hour-long meetings (the API offers more).
BOOKING_DAYS = 14
BOOKING_MINUTES = 60
MAX_MESSAGE = 100_000


def moment(at: datetime, zone: ZoneInfo) -> str:
    """``Friday, November 27, 2026 at 2:05 PM CET``: the organization's clock, as in our mail."""
    return format_instant(at, zone.key)


def render_status(view: TicketStatusView, token: str, support_address: str) -> str:
    """The ticket page's body; everything that came from people or the database is escaped."""
    zone = view.timezone
    facts = [
        f"<p><strong>{escape(view.status_text)}</strong></p>",
        f"<p class=muted>Opened {moment(view.opened_at, zone)}",
    ]
    if view.closed_at is not None:
        facts.append(f" · closed {moment(view.closed_at, zone)}")
    facts.append("</p>")
    if view.consultant:
        facts.append(f"<p>Your consultant: {escape(view.consultant)}</p>")
    for appointment in view.appointments:
        facts.append(f"<p>Appointment booked: {moment(appointment.starts_at, zone)}</p>")
    if view.can_book:
        facts.append(
            f'<p><a href="{escape(token)}/appointment">Book time with {escape(view.consultant or "")}</a></p>'
        )
    entries = [
        f'<div class="entry{" customer" if entry.from_customer else ""}">'
        f"<div class=muted>{escape(entry.author)} · {moment(entry.at, zone)}</div>"
        f"<p>{escape(entry.body)}</p></div>"
        for entry in view.entries
    ]
    if view.truncated:
        entries.append("<p class=muted>Later messages are not shown here; they are in your mailbox.</p>")
    answer = (
        f"<p class=muted>You can also reply to any of our emails about this ticket, or write to "
        f"{escape(support_address)} with {escape(view.number)} in the subject.</p>"
    )
    if view.status != TicketStatus.CLOSED:
        answer = (
            f'<h2>Add to the conversation</h2><form method="post" action="{escape(token)}/messages">'
            f'<textarea name="body" required maxlength="{MAX_MESSAGE}"></textarea>'
            f'<button type="submit">Send</button></form>{answer}'
        )
    return (
        f"<h1>{escape(view.number)}: {escape(view.subject)}</h1>{''.join(facts)}"
        f"<h2>Conversation</h2>{''.join(entries)}{answer}"
    )


def render_slots(offer: SlotList, number: str) -> str:
    """The booking form: free starts by day, in the customer's timezone."""
    zone = ZoneInfo(offer.timezone)
    head = (
        f"<h1>Book time with {escape(offer.agent_name)}</h1>"
        f"<p>About {escape(number)}. {offer.duration_minutes} minutes; times in {escape(offer.timezone)}.</p>"
    )
    if offer.note:
        head += f"<p>{escape(offer.note)}</p>"
    if offer.external_scheduling_url:
        head += f'<p>Or use <a href="{escape(offer.external_scheduling_url)}">their own booking page</a>.</p>'
    policy = f"<p class=muted>{escape(offer.policy)}</p>"
    if offer.not_bookable_reason:
        return head + f"<p><strong>{escape(offer.not_bookable_reason)}</strong></p>" + policy
    if not offer.slots:
        return (
            head
            + "<p>No free time in the next two weeks. Reply to our email with times that suit you.</p>"
            + policy
        )
    days = []
    for day, slots in groupby(offer.slots, key=lambda s: s.starts_at.astimezone(zone).date()):
        options = "".join(
            '<label><input type="radio" name="starts_at" required '
            f'value="{escape(slot.starts_at.isoformat())}">'
            f" {format_clock(slot.starts_at, zone.key)} to {format_clock(slot.ends_at, zone.key)}</label>"
            for slot in slots
        )
        days.append(f"<fieldset><legend>{format_day(day)}</legend>{options}</fieldset>")
    return f'{head}<form method="post">{"".join(days)}<button type="submit">Book</button></form>{policy}'


def _problem_page(error: Problem) -> HTMLResponse:
    return page("Your ticket", f"<p>{escape(error.detail or error.title)}</p>", status=error.status)


@router.get("/ticket-status/{token}", response_class=HTMLResponse, responses=INVALID)
async def ticket_status_page(token: LinkToken, uow: Uow, settings: AppSettings) -> HTMLResponse:
    """A ticket as its contact sees it: state, consultant, booked appointments, the public
    conversation. Internal notes never show."""
    try:
        ticket, contact = await ticket_status.open_link(uow, token, secret=_secret(settings))
    except TicketLinkInvalid as error:
        return _problem_page(error)
    view = await ticket_status.status_of(uow, ticket, contact, company=settings.company_name, now=utcnow())
    return page(f"{view.number}: {view.subject}", render_status(view, token, settings.support_address))


@router.get("/ticket-status/{token}/appointment", response_class=HTMLResponse, responses=INVALID)
async def booking_page(token: LinkToken, uow: Uow, settings: AppSettings) -> HTMLResponse:
    """The consultant's free times for the next two weeks, to pick one. Opening it books
    nothing (mail scanners open links by themselves); submitting does."""
    try:
        ticket, contact = await ticket_status.open_link(uow, token, secret=_secret(settings))
        offer = await scheduling.offer_slots(
            uow,
            ticket_status.link_caller(contact, request_id_var.get()),
            settings,
            ticket.id,
            first_day=None,
            days=BOOKING_DAYS,
            duration_minutes=BOOKING_MINUTES,
            timezone=None,
        )
    except Problem as error:  # the link, or why there is nothing to book (no consultant yet …)
        return _problem_page(error)
    return page("Book time", render_slots(offer, ticket_number(ticket.number)))


@router.post("/ticket-status/{token}/appointment", response_class=HTMLResponse, responses=INVALID)
async def book_from_page(
    token: LinkToken,
    uow: Uow,
    settings: AppSettings,
    starts_at: Annotated[str, Form(max_length=64, examples=["2026-12-01T10:00:00-06:00"])],
) -> HTMLResponse:
    """Book the chosen start with the ticket's consultant, by the API's rules (a signed SLA on
    file, a free slot, no double booking); both sides get the calendar invite."""
    try:
        ticket, contact = await ticket_status.open_link(uow, token, secret=_secret(settings))
        try:
            choice = AppointmentBook(
                starts_at=datetime.fromisoformat(starts_at), duration_minutes=BOOKING_MINUTES
            )
        except (ValueError, ValidationError):
            return page("Book time", "<p>Pick one of the offered times.</p>", status=422)
        caller = ticket_status.link_caller(contact, request_id_var.get())
        appointment = await scheduling.book(uow, caller, settings, ticket.id, choice)
        await uow.commit()
    except Problem as error:  # the link, a taken slot, no signed SLA …
        return _problem_page(error)
    view = await ticket_status.status_of(uow, ticket, contact, company=settings.company_name, now=utcnow())
    back = f'<p><a href="../{escape(token)}">Back to {escape(view.number)}</a></p>'
    when = moment(appointment.starts_at, view.timezone)
    return page(
        "Booked",
        f"<h1>Booked</h1><p>{when} with {escape(view.consultant or '')}. A calendar invite is on its "
        f"way to {escape(contact.email)}.</p>{back}",
    )


@router.post(
    "/ticket-status/{token}/messages",
    status_code=303,
    response_class=HTMLResponse,
    responses={**INVALID, 303: {"description": "written: back to the ticket's page"}},
)
async def write_from_page(
    token: LinkToken,
    uow: Uow,
    settings: AppSettings,
    body: Annotated[str, Form(max_length=MAX_MESSAGE, examples=["The display now shows E-17."])],
) -> Response:
    """A message from the customer on their ticket, as a reply by mail would be (the consultant
    hears of it; a ticket waiting on the customer resumes). Not on a closed ticket."""
    try:
        ticket, contact = await ticket_status.open_link(uow, token, secret=_secret(settings))
        try:
            message = MessageCreate(body=body.strip())
        except ValidationError:
            return page("Your ticket", "<p>Write something to send.</p>", status=422)
        await service.post_message(
            uow, ticket_status.link_caller(contact, request_id_var.get()), ticket.id, message
        )
        await uow.commit()
    except Problem as error:  # the link, a closed ticket …
        return _problem_page(error)
    return RedirectResponse(f"../{token}", status_code=303)


def _secret(settings: Settings) -> str:
    return settings.secret_key.get_secret_value()
