"""The pages behind the closure mail's smiley links (no sign-in: the signed link is the key)."""

from __future__ import annotations

from html import escape
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Form
from fastapi.responses import HTMLResponse

from services.ticket_api import feedback, service
from services.ticket_api.deps import AppSettings, CurrentCaller, Uow
from services.ticket_api.errors import TicketNotFound
from services.ticket_api.models import Feedback, FeedbackPublic, Rating
from services.ticket_api.pages import LinkToken, page
from services.ticket_api.views import ticket_number
from shared.logging import request_id_var
from shared.problems import problem_responses

router = APIRouter(tags=["feedback"])


def _form(number: str, token: str, rating: Rating, comment: str) -> str:
    def option(value: Rating, label: str) -> str:
        checked = " checked" if value == rating else ""
        return (
            f'<label class="{value.value}"><input type="radio" name="rating" value="{value.value}"{checked}> '
            f"{label}</label>"
        )

    return (
        f"<h1>How did we do on {escape(number)}?</h1>"
        f'<form method="post" action="/api/v1/feedback/{escape(token)}">'
        f"{option(Rating.HAPPY, '&#128578; Happy')}{option(Rating.UNHAPPY, '&#128577; Not happy')}"
        "<label>Anything you want to tell us? (optional)"
        f'<textarea name="comment" maxlength="5000">{escape(comment)}</textarea></label>'
        '<button type="submit">Send</button></form>'
    )


@router.get(
    "/feedback/{token}", response_class=HTMLResponse, responses={400: {"description": "invalid link"}}
)
async def feedback_form(token: LinkToken, uow: Uow, settings: AppSettings) -> HTMLResponse:
    """The form behind a feedback link, with its rating pre-selected. Opening it records nothing
    (mail scanners open links on their own); submitting it does."""
    try:
        link = await feedback.open_link(uow, token, secret=settings.secret_key.get_secret_value())
    except feedback.FeedbackLinkInvalid as error:
        return page("Feedback", f"<p>{escape(error.detail)}</p>", status=400)
    earlier = await feedback.earlier_comment(uow, link)
    return page("Feedback", _form(ticket_number(link.ticket.number), token, link.rating, earlier))


@router.post(
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
        return page("Feedback", f"<p>{escape(error.detail)}</p>", status=400)
    await feedback.record(uow, link, rating=rating, comment=comment.strip(), request_id=request_id_var.get())
    await uow.commit()
    return page(
        "Thank you",
        f"<h1>Thank you!</h1><p>Your feedback on {escape(ticket_number(link.ticket.number))} "
        "is recorded.</p>",
    )


@router.get("/tickets/{ticket_id}/feedback", responses=problem_responses(401, 404, 422))
async def ticket_feedback(ticket_id: UUID, uow: Uow, caller: CurrentCaller) -> FeedbackPublic:
    """The customer's rating of the ticket, when they gave one."""
    ticket = await service.visible_ticket(uow, caller, ticket_id)
    answer = await uow.session.get(Feedback, ticket.id)
    if answer is None:
        raise TicketNotFound(f"No feedback on {ticket_number(ticket.number)} yet.")
    return FeedbackPublic.model_validate(answer, from_attributes=True)
