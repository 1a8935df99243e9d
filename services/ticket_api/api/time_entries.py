from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import Response

from services.ticket_api import repository as repo
from services.ticket_api import service
from services.ticket_api.deps import CurrentCaller, Uow, WritingCaller
from services.ticket_api.models import TimeEntry, TimeEntryCreate, TimeEntryPublic, TimeEntryUpdate
from shared.pagination import Page, decode_cursor, page_of
from shared.problems import problem_responses

router = APIRouter(tags=["time entries"])


def _public(entry: TimeEntry) -> TimeEntryPublic:
    return TimeEntryPublic.model_validate(entry, from_attributes=True)


@router.post(
    "/tickets/{ticket_id}/time-entries", status_code=201, responses=problem_responses(401, 403, 404, 422)
)
async def log_time(
    ticket_id: UUID, body: TimeEntryCreate, uow: Uow, caller: WritingCaller
) -> TimeEntryPublic:
    """Log time worked on a ticket (agents). Billing charges it when the ticket closes."""
    entry = await service.log_time(uow, caller, ticket_id, body)
    await uow.commit()
    return _public(entry)


@router.get("/tickets/{ticket_id}/time-entries", responses=problem_responses(401, 404, 422))
async def list_time_entries(
    ticket_id: UUID,
    uow: Uow,
    caller: CurrentCaller,
    limit: Annotated[int, Query(ge=1, le=200)] = 100,
    cursor: str | None = None,
) -> Page[TimeEntryPublic]:
    """Time logged on the ticket, oldest first (also shown to the ticket's organization)."""
    ticket = await service.visible_ticket(uow, caller, ticket_id)
    entries = await repo.list_time_entries(
        uow.session, ticket.id, limit=limit + 1, after=decode_cursor(cursor)
    )
    return page_of([_public(e) for e in entries], [e.id for e in entries], limit)


@router.patch("/time-entries/{entry_id}", responses=problem_responses(401, 403, 404, 422))
async def update_time_entry(
    entry_id: UUID, body: TimeEntryUpdate, uow: Uow, caller: WritingCaller
) -> TimeEntryPublic:
    """Correct a time entry (agents); billing reverses what it charged and charges the new value."""
    entry = await service.update_time_entry(uow, caller, entry_id, body)
    await uow.commit()
    return _public(entry)


@router.delete("/time-entries/{entry_id}", status_code=204, responses=problem_responses(401, 403, 404))
async def delete_time_entry(entry_id: UUID, uow: Uow, caller: WritingCaller) -> Response:
    """Remove a time entry (agents); billing reverses whatever it charged for it."""
    await service.delete_time_entry(uow, caller, entry_id)
    await uow.commit()
    return Response(status_code=204)
