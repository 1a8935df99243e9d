"""Customer feedback from the signed links of the closure mail.

The links come from the notifier (``shared.signed_links``, purpose ``feedback``: ticket id,
the contact's email, a pre-selected rating, an expiry). Mail scanners open links by themselves,
so opening one only shows a form with the rating pre-selected; the rating is recorded when the
form is submitted, once per ticket (a later answer replaces the earlier one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from services.ticket_api.caller import Caller, audit
from services.ticket_api.feedback.models import Feedback, Rating
from services.ticket_api.organizations import repository as organization_repo
from services.ticket_api.organizations.views import contact_ref, organization_ref
from services.ticket_api.tickets import repository as ticket_repo
from services.ticket_api.tickets.models import Ticket
from services.ticket_api.tickets.views import ticket_number
from shared import events as ev
from shared.clock import utcnow
from shared.principal import Principal, PrincipalKind
from shared.problems import Problem
from shared.signed_links import FEEDBACK, ExpiredLink, InvalidLink, verify
from shared.uow import UnitOfWork

PURPOSE = FEEDBACK
MAX_COMMENT = 5000


class FeedbackLinkInvalid(Problem):
    status, slug, title = 400, "feedback-link-invalid", "This feedback link is not valid"


@dataclass(frozen=True)
class FeedbackLink:
    ticket: Ticket
    email: str
    rating: Rating


async def open_link(uow: UnitOfWork, token: str, *, secret: str) -> FeedbackLink:
    """The ticket a genuine, unexpired link is about; refuses forged, altered or stale ones."""
    try:
        payload: dict[str, Any] = verify(token, purpose=PURPOSE, secret=secret)
        ticket_id = UUID(str(payload["ticket_id"]))
        rating = Rating(payload.get("rating", Rating.HAPPY))
        email = str(payload["email"]).lower()
    except ExpiredLink:
        raise FeedbackLinkInvalid("This feedback link has expired.") from None
    except (InvalidLink, KeyError, ValueError):
        raise FeedbackLinkInvalid("This feedback link is not valid (it may have been altered).") from None
    ticket = await ticket_repo.get_ticket(uow.session, ticket_id)
    contact = await organization_repo.get_contact(uow.session, ticket.contact_id) if ticket else None
    if ticket is None or contact is None or contact.email != email:
        raise FeedbackLinkInvalid("This feedback link does not match a ticket of yours.")
    return FeedbackLink(ticket, email, rating)


async def earlier_comment(uow: UnitOfWork, link: FeedbackLink) -> str:
    """What the customer wrote last time about this ticket ('' when nothing yet)."""
    feedback = await uow.session.get(Feedback, link.ticket.id)
    return feedback.comment if feedback is not None else ""


async def record(
    uow: UnitOfWork, link: FeedbackLink, *, rating: Rating, comment: str, request_id: str | None
) -> Feedback:
    ticket = link.ticket
    feedback = await uow.session.get(Feedback, ticket.id, with_for_update=True)
    now = utcnow()
    if feedback is None:
        feedback = Feedback(ticket_id=ticket.id, rating=rating, comment=comment, email=link.email)
        uow.session.add(feedback)
    else:
        comment = comment or feedback.comment  # a rating changed alone keeps the earlier words
        feedback.rating, feedback.comment, feedback.updated_at = rating, comment, now
    await uow.session.flush()
    contact = await organization_repo.get_contact(uow.session, ticket.contact_id)
    organization = (
        await organization_repo.get_organization(uow.session, ticket.organization_id)
        if ticket.organization_id
        else None
    )
    assert contact is not None
    caller = Caller(
        principal=Principal(
            kind=PrincipalKind.CUSTOMER, subject_id=contact.id, name=link.email, contact_id=contact.id
        ),
        request_id=request_id,
    )
    await audit(uow, caller, "ticket", ticket.id, "feedback", {"rating": rating.value, "comment": comment})
    payload = ev.FeedbackReceivedV1(
        ticket_id=ticket.id,
        number=ticket_number(ticket.number),
        rating=rating,
        comment=comment,
        contact=contact_ref(contact),
        organization=organization_ref(organization),
        assignee_id=ticket.assignee_id,
    )
    await uow.emit(
        ev.EventType.FEEDBACK_RECEIVED, payload, subject=f"ticket:{ticket.id}", request_id=request_id
    )
    return feedback
