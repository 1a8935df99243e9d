"""The SLA clock of each ticket: its timers started, paused, resumed, stopped and met as the
ticket moves (status changes, the first response by message or logged call, a response
withdrawn), their due and warning times kept as data for the watcher; the status of a
ticket's timers, and the preview of a ticket not yet created. The maths is ``sla.py``'s."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from services.triage import projections
from services.triage import repository as repo
from services.triage.business_hours import BusinessCalendar, next_business_instant
from services.triage.configuration import (
    calendar_name_of,
    calendar_named,
    calendar_public,
    current_policies,
)
from services.triage.context import Context
from services.triage.decision import plan_sla
from services.triage.errors import InvalidConfiguration, OrganizationNotFound
from services.triage.models import SlaTimer, TicketRecord
from services.triage.schemas import SlaPreview, SlaPreviewRequest, SlaStatus, TimerStatus
from services.triage.sla import TargetKind, Timer, call_response_at, clock_start_reason
from shared import events as ev
from shared.principal import Principal
from shared.vocabulary import TicketStatus

log = logging.getLogger(__name__)


def timer_of(row: SlaTimer) -> Timer:
    return Timer(row.target_minutes, row.started_at, row.paused_at, row.paused_minutes)


def refresh(row: SlaTimer, timer: Timer, calendar: BusinessCalendar, share: float) -> None:
    """Write a timer's state back, with its due and warning times and the next alert."""
    row.target_minutes = timer.target_minutes
    row.started_at, row.paused_at, row.paused_minutes = (
        timer.started_at,
        timer.paused_at,
        timer.paused_minutes,
    )
    ended = row.met_at is not None or row.stopped_at is not None
    if not ended or timer.paused_at is None:
        row.due_at = timer.due_at(calendar)
        row.warn_at = timer.warn_at(calendar, share)
    if ended or timer.paused_at is not None or row.breached_at is not None:
        row.next_alert_at = None
    else:
        row.next_alert_at = row.due_at if row.warning_sent_at is not None else row.warn_at


async def _move_timers(
    session: AsyncSession,
    ticket: TicketRecord,
    context: Context,
    change: Callable[[SlaTimer, Timer, BusinessCalendar], Timer],
) -> None:
    # Each timer keeps counting in the calendar it started with (until triaged again).
    for row in (await repo.timers_of(session, ticket.id)).values():
        calendar = await calendar_named(session, row.calendar_name)
        timer = change(row, timer_of(row), calendar)
        refresh(row, timer, calendar, context.warning_share)
    await session.flush()


async def on_status_changed(
    session: AsyncSession,
    ticket: TicketRecord,
    change: ev.TicketStatusChangedV1,
    at: datetime,
    context: Context,
) -> None:
    if ticket.status_changed_at is not None and at < ticket.status_changed_at:
        return  # an older change arriving late: the newer one already set the timers
    ticket.status_changed_at = at
    target, source = change.to_status, change.from_status

    def move(row: SlaTimer, timer: Timer, calendar: BusinessCalendar) -> Timer:
        if target == TicketStatus.CLOSED:
            if row.met_at is not None or row.stopped_at is not None:
                return timer  # done already (a first response given): it stays as it is
            if row.target == TargetKind.RESOLUTION:
                row.met_at = at
            else:
                row.stopped_at = at
            return timer.pause(at)  # a reopened ticket resumes counting from its reopening
        if source == TicketStatus.CLOSED and timer.is_paused:
            # Reopened: what closing ended counts again.
            if row.target == TargetKind.RESOLUTION:
                row.met_at = None
            row.stopped_at = None
        if target == TicketStatus.PENDING_CUSTOMER:
            return timer.pause(at) if row.met_at is None else timer
        return timer.resume(at, calendar)

    await _move_timers(session, ticket, context, move)


async def first_response(
    session: AsyncSession, ticket: TicketRecord, at: datetime, context: Context, *, source: str
) -> None:
    responses = _responses_of(ticket)
    if source in responses:
        return
    responses[source] = at.isoformat()
    await _set_responses(session, ticket, responses, context)


def _responses_of(ticket: TicketRecord) -> dict[str, str]:
    responses = dict(ticket.responses or {})
    if not responses and ticket.first_responded_at is not None:
        responses["recorded"] = ticket.first_responded_at.isoformat()  # from before responses were kept
    return responses


async def _withdraw_response(
    session: AsyncSession, ticket: TicketRecord, source: str, context: Context
) -> None:
    responses = _responses_of(ticket)
    if responses.pop(source, None) is not None:
        await _set_responses(session, ticket, responses, context)


async def _set_responses(
    session: AsyncSession, ticket: TicketRecord, responses: dict[str, str], context: Context
) -> None:
    """Keep the responses; the first response is the earliest of them (none: the clock runs)."""
    ticket.responses = responses
    first = min((datetime.fromisoformat(at) for at in responses.values()), default=None)
    if first == ticket.first_responded_at:
        await session.flush()
        return
    ticket.first_responded_at = first

    def met(row: SlaTimer, timer: Timer, calendar: BusinessCalendar) -> Timer:
        if row.target == TargetKind.FIRST_RESPONSE and row.stopped_at is None:
            row.met_at = first
        return timer

    await _move_timers(session, ticket, context, met)


async def apply_time_entry(session: AsyncSession, event: ev.Event, context: Context) -> None:
    """A logged call counts as a response: from its start when it was logged before the first
    response was due, else from when it was logged (a record is not rewritten after the fact);
    a deleted call no longer counts."""
    entry = ev.payload_of(event, ev.TimeEntryV1)
    if entry.source != "call":
        return
    ticket = await repo.get_ticket(session, entry.ticket_id, for_update=True)
    if ticket is None:
        log.info("call logged on ticket %s that triage has not seen; ignored", entry.ticket_id)
        return
    source = f"time_entry:{entry.time_entry_id}"
    if entry.deleted:
        await _withdraw_response(session, ticket, source, context)
        return
    if source in (ticket.responses or {}):
        return  # the call counts from when it was first logged; later edits change nothing
    rows = await repo.timers_of(session, ticket.id)
    timer = rows.get(TargetKind.FIRST_RESPONSE.value)
    due = timer.due_at if timer is not None else None
    await first_response(
        session,
        ticket,
        call_response_at(entry.started_at, event.occurred_at, ticket.created_at, due),
        context,
        source=source,
    )


async def sla_status(session: AsyncSession, ticket_id: UUID, now: datetime) -> SlaStatus:
    ticket = await projections.known_ticket(session, ticket_id)
    timers: list[TimerStatus] = []
    rows = await repo.timers_of(session, ticket.id)
    for kind in TargetKind:
        row = rows.get(kind.value)
        if row is None:
            continue
        calendar = await calendar_named(session, row.calendar_name)
        timer = timer_of(row)
        ended_at = row.met_at or row.stopped_at
        measured_at = min(ended_at, now) if ended_at else now
        if row.met_at is not None:
            # Met after the due time is a breach all the same: the record says so.
            state = "met" if row.due_at is None or row.met_at <= row.due_at else "met_late"
        elif row.stopped_at is not None:
            state = "stopped"
        else:
            state = "paused" if timer.is_paused else "running"
        remaining = timer.remaining_minutes(measured_at, calendar)
        timers.append(
            TimerStatus(
                target=kind.value,
                state=state,
                target_minutes=row.target_minutes,
                calendar=row.calendar_name,
                started_at=row.started_at,
                clock_started_at=next_business_instant(row.started_at, calendar),
                due_at=row.due_at,
                warn_at=row.warn_at,
                elapsed_business_minutes=round(timer.elapsed_minutes(measured_at, calendar), 2),
                remaining_business_minutes=round(remaining, 2),
                paused_at=row.paused_at,
                paused_business_minutes=round(row.paused_minutes, 2),
                met_at=row.met_at,
                breached=row.breached_at is not None or remaining < 0,
                warning_sent_at=row.warning_sent_at,
                breached_at=row.breached_at,
            )
        )
    return SlaStatus(
        ticket_id=ticket.id,
        number=ticket.number,
        status=ticket.status,
        priority=ticket.priority,
        assignee_id=ticket.assignee_id,
        timers=timers,
    )


async def preview_sla(
    session: AsyncSession, principal: Principal, request: SlaPreviewRequest, now: datetime
) -> SlaPreview:
    """When first response and resolution would be due for a ticket of this priority arriving
    at ``request.at`` for this organization: the computation a created ticket gets."""
    organization = None
    if request.organization_id is not None:
        organization = await repo.get_organization(session, request.organization_id)
        if organization is None or not principal.can_see_organization(organization.id):
            raise OrganizationNotFound(f"No organization {request.organization_id} has reached triage yet.")
    elif not principal.is_staff:
        raise InvalidConfiguration("organization_id: say which of your organizations the ticket is for.")
    at = request.at or now
    name = calendar_name_of(organization)
    calendar = await calendar_named(session, name)
    tier = organization.support_tier if organization else None
    try:
        plan = plan_sla(await current_policies(session), calendar, tier, request.priority, started_at=at)
    except OverflowError:
        raise InvalidConfiguration("at: no working time of the calendar follows this instant.") from None
    first, resolution = plan.due[TargetKind.FIRST_RESPONSE], plan.due[TargetKind.RESOLUTION]
    assert first is not None and resolution is not None  # a new timer is never paused
    return SlaPreview(
        organization_id=organization.id if organization else None,
        priority=request.priority.value,
        at=at,
        support_tier=tier,
        calendar=calendar_public(name, await repo.get_calendar(session, name)),
        targets_source=plan.targets_source,
        first_response_minutes=plan.targets.first_response_minutes,
        resolution_minutes=plan.targets.resolution_minutes,
        clock_started_at=plan.clock_started_at,
        closed_reason=clock_start_reason(at, plan.clock_started_at, calendar),
        pauses_assumed=[],
        first_response_due_at=first,
        resolution_due_at=resolution,
    )
