"""The tickets' routes: tickets, their messages, status, audit trail and time entries."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from services.ticket_api import idempotency
from services.ticket_api.deps import CurrentCaller, StaffCaller, Uow, WritingCaller
from services.ticket_api.errors import TicketNotFound
from services.ticket_api.tickets import repository as repo
from services.ticket_api.tickets import service as ticket_service
from services.ticket_api.tickets.models import TimeEntry
from services.ticket_api.tickets.schemas import (
    AuditEntryPublic,
    MessageCreate,
    MessagePublic,
    StatusChange,
    TicketCounts,
    TicketCreate,
    TicketPublic,
    TicketUpdate,
    TimeEntryCreate,
    TimeEntryPublic,
    TimeEntryUpdate,
)
from services.ticket_api.tickets.views import parse_ticket_number, ticket_document, ticket_public
from shared.idempotency import IdempotencyKey
from shared.pagination import Page, decode_cursor, page_document, page_of
from shared.problems import problem_responses
from shared.vocabulary import Priority, TicketStatus
from shared.web import dump_json, json_response

router = APIRouter(prefix="/tickets", tags=["tickets"])


@router.post(
    "",
    status_code=201,
    responses={
        201: {"model": TicketPublic, "description": "The new ticket (or, on a replay, the first answer)"},
        **problem_responses(401, 403, 409, 413, 422, 429),
    },
    summary="Open a ticket",
)
async def create_ticket(
    body: TicketCreate, uow: Uow, caller: WritingCaller, idempotency_key: IdempotencyKey = None
) -> Response:
    """Open a ticket for the contact named by email. A new contact is created (and joins the
    organization owning its email domain). Send an `Idempotency-Key` to retry safely."""
    owner = caller.principal.audit_ref
    fingerprint = idempotency.request_fingerprint(body.model_dump(mode="json"))
    if idempotency_key is not None:
        previous = await idempotency.previous_answer(uow, owner, idempotency_key, fingerprint)
        if previous is not None:
            return _located(previous)
    ticket = await ticket_service.create_ticket(
        uow, caller, await ticket_service.requested_ticket(uow, caller, body)
    )
    answer = dump_json(ticket_document(ticket)).decode()
    if idempotency_key is not None:
        replayed = await idempotency.remember_or_replay(
            uow, caller=owner, key=idempotency_key, fingerprint=fingerprint, status=201, body=answer
        )
        if replayed is not None:
            return _located(replayed)
    await uow.commit()
    return _located(Response(answer, status_code=201, media_type="application/json"))


def _located(answer: Response) -> Response:
    """A ticket's creation answer, first or replayed, says where the ticket is."""
    if answer.status_code == 201:
        answer.headers["Location"] = f"/api/v1/tickets/{json.loads(answer.body)['id']}"
    return answer


def ticket_filter(
    status: Annotated[list[TicketStatus] | None, Query()] = None,
    organization_id: UUID | None = None,
    assignee_id: UUID | None = None,
    unassigned: bool = False,
    priority: Annotated[list[Priority] | None, Query()] = None,
    updated_since: datetime | None = Query(None, description="ISO 8601 with timezone"),
    contact_id: UUID | None = None,
) -> repo.TicketFilter:
    """The filters of a ticket list (and of its counts): they combine with AND; repeat
    `status` or `priority` to match any of several."""
    return repo.TicketFilter(
        status=status or (),
        organization_id=organization_id,
        assignee_id=assignee_id,
        unassigned=unassigned,
        priority=priority or (),
        updated_since=updated_since,
        contact_id=contact_id,
    )


TicketFilters = Annotated[repo.TicketFilter, Depends(ticket_filter)]


@router.get("", response_model=Page[TicketPublic], responses=problem_responses(400, 401, 422))
async def list_tickets(
    uow: Uow,
    caller: CurrentCaller,
    filters: TicketFilters,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> Response:
    """Tickets the caller may see, newest first. Filters combine with AND; repeat `status`
    or `priority` to match any of several."""
    tickets = await repo.list_tickets(
        uow.session,
        scope=ticket_service.ticket_scope(caller.principal),
        filters=filters,
        before=decode_cursor(cursor),
        limit=limit + 1,
    )
    return json_response(page_document([ticket_document(t) for t in tickets], [t.id for t in tickets], limit))


@router.get("/counts", responses=problem_responses(401, 422))
async def count_tickets(uow: Uow, caller: CurrentCaller, filters: TicketFilters) -> TicketCounts:
    """How many of the tickets the caller may see match the filters (those of the list), by
    status, unassigned, and assigned to the calling agent: one request for a queue's tabs."""
    me = caller.principal.agent_id
    counts = await repo.count_tickets(
        uow.session, scope=ticket_service.ticket_scope(caller.principal), filters=filters, assignee_id=me
    )
    by_status = {status: 0 for status in TicketStatus}
    for row in counts:
        by_status[row.status] = row.total
    return TicketCounts(
        total=sum(row.total for row in counts),
        by_status=by_status,
        unassigned=sum(row.unassigned for row in counts),
        mine=sum(row.assigned_to for row in counts) if me is not None else None,
    )


@router.get("/by-number/{number}", responses=problem_responses(401, 404))
async def get_ticket_by_number(number: str, uow: Uow, caller: CurrentCaller) -> TicketPublic:
    """Look a ticket up by its human number (`TKT-42` or `42`)."""
    parsed = parse_ticket_number(number)
    if parsed is None:
        raise TicketNotFound(f"{number!r} is not a ticket number like TKT-42.")
    return ticket_public(await ticket_service.visible_ticket_by_number(uow, caller, parsed))


@router.get("/{ticket_id}", responses=problem_responses(401, 404, 422))
async def get_ticket(ticket_id: UUID, uow: Uow, caller: CurrentCaller) -> TicketPublic:
    return ticket_public(await ticket_service.visible_ticket(uow, caller, ticket_id))


@router.patch("/{ticket_id}", responses=problem_responses(401, 403, 404, 422))
async def update_ticket(ticket_id: UUID, body: TicketUpdate, uow: Uow, caller: WritingCaller) -> TicketPublic:
    """Change fields. Priority, assignee, impact and category are for agents only."""
    ticket = await ticket_service.update_ticket(uow, caller, ticket_id, body)
    await uow.commit()
    return ticket_public(ticket)


@router.post("/{ticket_id}/status", responses=problem_responses(401, 403, 404, 409, 422))
async def change_status(ticket_id: UUID, body: StatusChange, uow: Uow, caller: WritingCaller) -> TicketPublic:
    """Move the ticket through its lifecycle: new → open → pending_customer ⇄ open → closed;
    a closed ticket can be reopened. Other moves answer 409 with the allowed ones."""
    ticket = await ticket_service.change_status(uow, caller, ticket_id, body)
    await uow.commit()
    return ticket_public(ticket)


@router.post("/{ticket_id}/messages", status_code=201, responses=problem_responses(401, 403, 404, 409, 422))
async def add_message(ticket_id: UUID, body: MessageCreate, uow: Uow, caller: WritingCaller) -> MessagePublic:
    """Add a public reply or (agents only) an internal note."""
    message = await ticket_service.post_message(uow, caller, ticket_id, body)
    await uow.commit()
    return MessagePublic.model_validate(message, from_attributes=True)


@router.get("/{ticket_id}/messages", responses=problem_responses(401, 404, 422))
async def list_messages(
    ticket_id: UUID,
    uow: Uow,
    caller: CurrentCaller,
    limit: Annotated[int, Query(ge=1, le=200)] = 100,
    cursor: str | None = None,
) -> Page[MessagePublic]:
    """The conversation, oldest first. Internal notes are shown to agents only."""
    ticket = await ticket_service.visible_ticket(uow, caller, ticket_id)
    messages = await repo.list_messages(
        uow.session,
        ticket.id,
        include_internal=caller.principal.is_staff,
        limit=limit + 1,
        after=decode_cursor(cursor),
    )
    items = [MessagePublic.model_validate(m, from_attributes=True) for m in messages]
    return page_of(items, [m.id for m in messages], limit)


@router.get("/{ticket_id}/audit", responses=problem_responses(401, 403, 404, 422))
async def ticket_audit(
    ticket_id: UUID, uow: Uow, caller: StaffCaller, limit: Annotated[int, Query(ge=1, le=500)] = 200
) -> list[AuditEntryPublic]:
    """Every change to the ticket: who, what (old → new), when, under which request id (agents)."""
    ticket = await ticket_service.visible_ticket(uow, caller, ticket_id)
    entries = await repo.list_audit(uow.session, entity_type="ticket", entity_id=ticket.id, limit=limit)
    return [AuditEntryPublic.model_validate(e, from_attributes=True) for e in entries]


time_entries_router = APIRouter(tags=["time entries"])


def _public(entry: TimeEntry) -> TimeEntryPublic:
    return TimeEntryPublic.model_validate(entry, from_attributes=True)


@time_entries_router.post(
    "/tickets/{ticket_id}/time-entries", status_code=201, responses=problem_responses(401, 403, 404, 422)
)
async def log_time(
    ticket_id: UUID, body: TimeEntryCreate, uow: Uow, caller: WritingCaller
) -> TimeEntryPublic:
    """Log time worked on a ticket (agents). Billing charges it when the ticket closes."""
    entry = await ticket_service.log_time(uow, caller, ticket_id, body)
    await uow.commit()
    return _public(entry)


@time_entries_router.get("/tickets/{ticket_id}/time-entries", responses=problem_responses(401, 404, 422))
async def list_time_entries(
    ticket_id: UUID,
    uow: Uow,
    caller: CurrentCaller,
    limit: Annotated[int, Query(ge=1, le=200)] = 100,
    cursor: str | None = None,
) -> Page[TimeEntryPublic]:
    """Time logged on the ticket, oldest first (also shown to the ticket's organization)."""
    ticket = await ticket_service.visible_ticket(uow, caller, ticket_id)
    entries = await repo.list_time_entries(
        uow.session, ticket.id, limit=limit + 1, after=decode_cursor(cursor)
    )
    return page_of([_public(e) for e in entries], [e.id for e in entries], limit)


@time_entries_router.patch("/time-entries/{entry_id}", responses=problem_responses(401, 403, 404, 422))
async def update_time_entry(
    entry_id: UUID, body: TimeEntryUpdate, uow: Uow, caller: WritingCaller
) -> TimeEntryPublic:
    """Correct a time entry (agents); billing reverses what it charged and charges the new value."""
    entry = await ticket_service.update_time_entry(uow, caller, entry_id, body)
    await uow.commit()
    return _public(entry)


@time_entries_router.delete(
    "/time-entries/{entry_id}", status_code=204, responses=problem_responses(401, 403, 404)
)
async def delete_time_entry(entry_id: UUID, uow: Uow, caller: WritingCaller) -> Response:
    """Remove a time entry (agents); billing reverses whatever it charged for it."""
    await ticket_service.delete_time_entry(uow, caller, entry_id)
    await uow.commit()
    return Response(status_code=204)
