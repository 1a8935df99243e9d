"""A ticket as triage sees it: its decisions (with their breakdown), its SLA status, and
triage on demand. Staff only."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query

from services.triage import projections, sla_clock, triaging
from services.triage import repository as repo
from services.triage.deps import Staff, TriageContext, Uow
from services.triage.models import TriageDecision
from services.triage.schemas import DecisionPublic, RetriageRequest, SlaPreview, SlaPreviewRequest, SlaStatus
from shared.auth import CurrentPrincipal, require_scope, require_staff
from shared.pagination import Page, decode_cursor, page_of
from shared.principal import PrincipalKind
from shared.problems import problem_responses

router = APIRouter(prefix="/tickets", tags=["tickets"])
preview_router = APIRouter(prefix="/sla", tags=["tickets"])


def _public(decision: TriageDecision) -> DecisionPublic:
    return DecisionPublic.model_validate(decision, from_attributes=True)


@router.get("/{ticket_id}/decisions", responses=problem_responses(401, 403, 404, 422))
async def list_decisions(
    ticket_id: UUID,
    uow: Uow,
    principal: Staff,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> Page[DecisionPublic]:
    """Every triage decision of the ticket, oldest first, each with its full breakdown:
    priority (urgency, impact and how it was judged, matrix cell, tier adjustment), SLA
    (calendar, targets, clock start, due times) and assignment (every candidate reviewed)."""
    await projections.known_ticket(uow.session, ticket_id)
    decisions = await repo.list_decisions(
        uow.session, ticket_id, limit=limit + 1, after=decode_cursor(cursor)
    )
    return page_of([_public(d) for d in decisions], [d.id for d in decisions], limit)


@router.get("/{ticket_id}/sla", responses=problem_responses(401, 403, 404, 422))
async def sla_status(ticket_id: UUID, uow: Uow, principal: Staff, context: TriageContext) -> SlaStatus:
    """The ticket's SLA timers now: due times, business minutes used and left, pauses,
    whether each target was met or breached."""
    return await sla_clock.sla_status(uow.session, ticket_id, context.clock())


@router.post("/{ticket_id}/triage", responses=problem_responses(401, 403, 404, 422))
async def retriage(
    ticket_id: UUID, body: RetriageRequest, uow: Uow, principal: Staff, context: TriageContext
) -> DecisionPublic:
    """Triage the ticket again with the current matrix, policies and calendar (staff). The
    current assignee is kept unless `reassign` is true. ticket_api and notifier hear of it
    (`ticket.triaged`) when the priority or the assignee changes."""
    ticket = await projections.known_ticket(uow.session, ticket_id, for_update=True)
    decision = await triaging.triage_ticket(
        uow,
        ticket,
        trigger="on_demand",
        actor=principal.audit_ref,
        context=context,
        reassign=body.reassign,
    )
    await uow.commit()
    return _public(decision)


@preview_router.post("/preview", responses=problem_responses(401, 403, 404, 422))
async def preview_sla(
    body: SlaPreviewRequest, uow: Uow, principal: CurrentPrincipal, context: TriageContext
) -> SlaPreview:
    """If a ticket of this priority arrived at `at` for this organization, when would its first
    response and resolution be due? The calendar used, the pauses assumed (none) and the due
    instants, computed as for a created ticket; nothing is created. Staff, and portals
    (`tickets:read`) for their own organizations."""
    if principal.kind is PrincipalKind.PORTAL:
        require_scope(principal, "tickets:read")
    else:
        require_staff(principal)
    return await sla_clock.preview_sla(uow.session, principal, body, context.clock())
