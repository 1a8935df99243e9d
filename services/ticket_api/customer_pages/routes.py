"""The pages behind the links of customer mail (no sign-in: the signed link is the key; see
``customer_pages.service``): the ticket's page (where the customer may also write to us),
booking time with its consultant, and the feedback form of the closure mail."""

from __future__ import annotations

from datetime import datetime
from itertools import groupby
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from services.ticket_api.customer_pages import service as ticket_status
from services.ticket_api.customer_pages.pages import LinkToken, message_page, render
from services.ticket_api.customer_pages.service import TicketStatusView
from services.ticket_api.deps import AppSettings, Uow
from services.ticket_api.errors import TicketLinkInvalid
from services.ticket_api.feedback import service as feedback
from services.ticket_api.feedback.models import Rating
from services.ticket_api.scheduling import service as scheduling
from services.ticket_api.scheduling.schemas import AppointmentBook, SlotList
from services.ticket_api.settings import Settings
from services.ticket_api.tickets import service as ticket_service
from services.ticket_api.tickets.schemas import MessageCreate
from services.ticket_api.tickets.views import ticket_number
from shared.clock import utcnow
from shared.logging import request_id_var
from shared.problems import Problem
from shared.time_format import format_clock, format_day, format_instant

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


def status_page(view: TicketStatusView, token: str, support_address: str) -> HTMLResponse:
    """The ticket's page: its state, consultant, appointments, the public conversation."""
    return render(
        "ticket_status",
        view=view,
        token=token,
        support_address=support_address,
        max_message=MAX_MESSAGE,
        moment=lambda at: moment(at, view.timezone),
    )


def slots_page(offer: SlotList, number: str) -> HTMLResponse:
    """The booking form: free starts by day, in the customer's timezone."""
    zone = ZoneInfo(offer.timezone)
    days = [
        {
            "label": format_day(day),
            "slots": [
                {
                    "value": slot.starts_at.isoformat(),
                    "starts": format_clock(slot.starts_at, zone.key),
                    "ends": format_clock(slot.ends_at, zone.key),
                }
                for slot in slots
            ],
        }
        for day, slots in groupby(offer.slots, key=lambda s: s.starts_at.astimezone(zone).date())
    ]
    return render("booking", offer=offer, number=number, days=days)


def _problem_page(error: Problem) -> HTMLResponse:
    return message_page("Your ticket", error.detail or error.title, error.status)


@router.get("/ticket-status/{token}", response_class=HTMLResponse, responses=INVALID)
async def ticket_status_page(token: LinkToken, uow: Uow, settings: AppSettings) -> HTMLResponse:
    """A ticket as its contact sees it: state, consultant, booked appointments, the public
    conversation. Internal notes never show."""
    try:
        ticket, contact = await ticket_status.open_link(uow, token, secret=_secret(settings))
    except TicketLinkInvalid as error:
        return _problem_page(error)
    view = await ticket_status.status_of(uow, ticket, contact, company=settings.company_name, now=utcnow())
    return status_page(view, token, settings.support_address)


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
    return slots_page(offer, ticket_number(ticket.number))


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
            return message_page("Book time", "Pick one of the offered times.", 422)
        caller = ticket_status.link_caller(contact, request_id_var.get())
        appointment = await scheduling.book(uow, caller, settings, ticket.id, choice)
        await uow.commit()
    except Problem as error:  # the link, a taken slot, no signed SLA …
        return _problem_page(error)
    view = await ticket_status.status_of(uow, ticket, contact, company=settings.company_name, now=utcnow())
    return render(
        "booked",
        when=moment(appointment.starts_at, view.timezone),
        consultant=view.consultant or "",
        email=contact.email,
        token=token,
        number=view.number,
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
            return message_page("Your ticket", "Write something to send.", 422)
        await ticket_service.post_message(
            uow, ticket_status.link_caller(contact, request_id_var.get()), ticket.id, message
        )
        await uow.commit()
    except Problem as error:  # the link, a closed ticket …
        return _problem_page(error)
    return RedirectResponse(f"../{token}", status_code=303)


def _secret(settings: Settings) -> str:
    return settings.secret_key.get_secret_value()


feedback_router = APIRouter(tags=["feedback"])


@feedback_router.get(
    "/feedback/{token}", response_class=HTMLResponse, responses={400: {"description": "invalid link"}}
)
async def feedback_form(token: LinkToken, uow: Uow, settings: AppSettings) -> HTMLResponse:
    """The form behind a feedback link, with its rating pre-selected. Opening it records nothing
    (mail scanners open links on their own); submitting it does."""
    try:
        link = await feedback.open_link(uow, token, secret=settings.secret_key.get_secret_value())
    except feedback.FeedbackLinkInvalid as error:
        return message_page("Feedback", error.detail or error.title, 400)
    earlier = await feedback.earlier_comment(uow, link)
    return render(
        "feedback_form",
        number=ticket_number(link.ticket.number),
        token=token,
        rating=link.rating.value,
        comment=earlier,
        max_comment=feedback.MAX_COMMENT,
    )


@feedback_router.post(
    "/feedback/{token}", response_class=HTMLResponse, responses={400: {"description": "invalid link"}}
)
async def submit_feedback(
    token: LinkToken,
    uow: Uow,
    settings: AppSettings,
    rating: Annotated[Rating, Form(examples=["happy"])],
    comment: Annotated[str, Form(max_length=feedback.MAX_COMMENT)] = "",
) -> HTMLResponse:
    """Record the rating (and comment); a later answer for the same ticket replaces the rating,
    and its comment too unless it sends none (a new rating keeps the words said before)."""
    try:
        link = await feedback.open_link(uow, token, secret=settings.secret_key.get_secret_value())
    except feedback.FeedbackLinkInvalid as error:
        return message_page("Feedback", error.detail or error.title, 400)
    await feedback.record(uow, link, rating=rating, comment=comment.strip(), request_id=request_id_var.get())
    await uow.commit()
    return render("feedback_thanks", number=ticket_number(link.ticket.number))
