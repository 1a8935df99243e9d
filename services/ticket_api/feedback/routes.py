"""The customer's rating of a ticket, as staff and the API read it."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter

from services.ticket_api.deps import CurrentCaller, Uow
from services.ticket_api.errors import TicketNotFound
from services.ticket_api.feedback.models import Feedback
from services.ticket_api.feedback.schemas import FeedbackPublic
from services.ticket_api.tickets import service as ticket_service
from services.ticket_api.tickets.views import ticket_number
from shared.problems import problem_responses

router = APIRouter(tags=["feedback"])


@router.get("/tickets/{ticket_id}/feedback", responses=problem_responses(401, 404, 422))
async def ticket_feedback(ticket_id: UUID, uow: Uow, caller: CurrentCaller) -> FeedbackPublic:
    """The customer's rating of the ticket, when they gave one."""
    ticket = await ticket_service.visible_ticket(uow, caller, ticket_id)
    answer = await uow.session.get(Feedback, ticket.id)
    if answer is None:
        raise TicketNotFound(f"No feedback on {ticket_number(ticket.number)} yet.")
    return FeedbackPublic.model_validate(answer, from_attributes=True)
