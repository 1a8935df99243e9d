"""triage's rules: projections from ticket_api's events, triage decisions, SLA timers and the
watcher. Functions take the session (inside the consumer's or the request's transaction),
flush, and record the events they cause in the outbox of that same transaction."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from services.triage import repository as repo
from services.triage.business_hours import (
    BusinessCalendar,
    CalendarError,
    closed_days_between,
    format_weekly_hours,
    next_business_instant,
    parse_weekly_hours,
)
from services.triage.decision import Decision, TicketFacts, decide, plan_sla
from services.triage.errors import (
    CalendarNotFound,
    InvalidConfiguration,
    OrganizationNotFound,
    TicketNotFound,
)
from services.triage.models import (
    DEFAULT_CALENDAR,
    AgentRecord,
    BusinessCalendarRecord,
    CalendarConfig,
    CalendarPublic,
    MatrixConfig,
    OrganizationRecord,
    PoliciesConfig,
    SlaPreview,
    SlaPreviewRequest,
    SlaStatus,
    SlaTimer,
    TicketRecord,
    TimerStatus,
    TriageDecision,
    outbox,
    utcnow,
)
from services.triage.priority_matrix import MatrixError, Priority, PriorityMatrix
from services.triage.sla import PolicyError, SlaPolicies, TargetKind, Timer
from shared import events as ev
from shared.outbox import Outbox
from shared.principal import Principal

log = logging.getLogger(__name__)

PRODUCER = ev.Service.TRIAGE
ACTOR = "service:triage"
MATRIX_KEY, POLICIES_KEY = "matrix", "policies"
PENDING_CUSTOMER, CLOSED = "pending_customer", "closed"
# Changes to these fields of a ticket are new inputs: the ticket is triaged again.
TRIAGE_INPUTS = frozenset({"urgency", "impact", "category"})

Clock = Callable[[], datetime]

# Writes events into the outbox table in the caller's transaction (it never publishes: the
# consumer, or the request's unit of work, dispatches what the transaction recorded).
_EVENTS = Outbox(outbox, PRODUCER)


@dataclass(frozen=True)
class Context:
    """What a triage step needs beyond the database: the warning share and a clock."""

    warning_share: float = 0.8
    clock: Clock = utcnow


async def record(session: AsyncSession, event: ev.Event) -> None:
    await _EVENTS.record(session, [event])


# --- configuration -----------------------------------------------------------------------------


async def current_config(session: AsyncSession) -> tuple[PriorityMatrix, SlaPolicies]:
    """The matrix and the policies in force (the built-in defaults until configured)."""
    settings = await repo.get_settings(session)
    matrix = settings.get(MATRIX_KEY)
    policies = settings.get(POLICIES_KEY)
    return (
        PriorityMatrix.from_config(matrix["cells"], matrix["tier_adjustments"])
        if matrix
        else PriorityMatrix.default(),
        SlaPolicies.from_config(policies) if policies else SlaPolicies.standard(),
    )


async def current_matrix(session: AsyncSession) -> PriorityMatrix:
    return (await current_config(session))[0]


async def current_policies(session: AsyncSession) -> SlaPolicies:
    return (await current_config(session))[1]


def calendar_of(record: BusinessCalendarRecord | None) -> BusinessCalendar:
    if record is None:
        return BusinessCalendar()
    return BusinessCalendar(
        timezone=record.timezone,
        weekly_hours=parse_weekly_hours(record.weekly_hours),
        holiday_country=record.holiday_country,
        holiday_subdivision=record.holiday_subdivision,
        closed_dates=frozenset(date.fromisoformat(d) for d in record.closed_dates),
    )


async def calendar_named(session: AsyncSession, name: str) -> BusinessCalendar:
    """A stored calendar; the built-in default (Mon-Fri 09:00-17:00 America/Chicago, US
    holidays) for ``default`` until it is configured, or for a name that no longer exists."""
    record = await repo.get_calendar(session, name)
    if record is None and name != DEFAULT_CALENDAR:
        log.warning("calendar %r is not configured; using the default calendar", name)
        record = await repo.get_calendar(session, DEFAULT_CALENDAR)
    return calendar_of(record)


def calendar_public(name: str, record: BusinessCalendarRecord | None) -> CalendarPublic:
    calendar = calendar_of(record)
    return CalendarPublic(
        name=name,
        timezone=calendar.timezone,
        weekly_hours=format_weekly_hours(calendar.weekly_hours),
        holiday_country=calendar.holiday_country,
        holiday_subdivision=calendar.holiday_subdivision,
        closed_dates=sorted(calendar.closed_dates),
        updated_at=record.updated_at if record else None,
        updated_by=record.updated_by if record else None,
    )


async def get_calendar(session: AsyncSession, name: str) -> CalendarPublic:
    record = await repo.get_calendar(session, name)
    if record is None and name != DEFAULT_CALENDAR:
        raise CalendarNotFound(f"No calendar {name!r}.")
    return calendar_public(name, record)


async def list_calendars(session: AsyncSession) -> list[CalendarPublic]:
    records = {record.name: record for record in await repo.list_calendars(session)}
    names = sorted(records.keys() | {DEFAULT_CALENDAR})
    return [calendar_public(name, records.get(name)) for name in names]


async def save_calendar(
    session: AsyncSession, principal: Principal, name: str, config: CalendarConfig
) -> CalendarPublic:
    """Validate and store a calendar; a bad one raises 422 and changes nothing. New decisions
    and timers use it; due times already computed stay as they are."""
    try:
        calendar = BusinessCalendar(
            timezone=config.timezone,
            weekly_hours=parse_weekly_hours(config.weekly_hours),
            holiday_country=config.holiday_country,
            holiday_subdivision=config.holiday_subdivision,
            closed_dates=frozenset(config.closed_dates),
        )
    except CalendarError as error:
        raise InvalidConfiguration(f"Calendar {name!r}: {error}.") from None
    record = await repo.save_calendar(
        session,
        name,
        {
            "timezone": calendar.timezone,
            "weekly_hours": format_weekly_hours(calendar.weekly_hours),
            "holiday_country": calendar.holiday_country,
            "holiday_subdivision": calendar.holiday_subdivision,
            "closed_dates": [d.isoformat() for d in sorted(calendar.closed_dates)],
            "updated_by": principal.audit_ref,
        },
    )
    return calendar_public(name, record)


async def set_organization_calendar(
    session: AsyncSession, organization_id: UUID, calendar_name: str | None
) -> OrganizationRecord:
    organization = await repo.get_organization(session, organization_id)
    if organization is None:
        raise OrganizationNotFound(f"No organization {organization_id} has reached triage yet.")
    named = calendar_name is not None and calendar_name != DEFAULT_CALENDAR
    if named and await repo.get_calendar(session, calendar_name or "") is None:
        raise InvalidConfiguration(f"No calendar {calendar_name!r}; create it first.")
    organization.calendar_name = None if calendar_name == DEFAULT_CALENDAR else calendar_name
    await session.flush()
    return organization


async def save_matrix(session: AsyncSession, principal: Principal, config: MatrixConfig) -> MatrixConfig:
    try:
        matrix = PriorityMatrix.from_config(config.cells, config.tier_adjustments)
    except MatrixError as error:
        raise InvalidConfiguration(f"Priority matrix: {error}.") from None
    await repo.save_setting(session, MATRIX_KEY, matrix.to_config(), principal.audit_ref)
    return MatrixConfig.model_validate(matrix.to_config())


async def save_policies(
    session: AsyncSession, principal: Principal, config: PoliciesConfig
) -> PoliciesConfig:
    try:
        policies = SlaPolicies.from_config(config.model_dump())
    except PolicyError as error:
        raise InvalidConfiguration(f"SLA policies: {error}.") from None
    await repo.save_setting(session, POLICIES_KEY, policies.to_config(), principal.audit_ref)
    return PoliciesConfig.model_validate(policies.to_config())


# --- projections -------------------------------------------------------------------------------


async def apply_agent(session: AsyncSession, event: ev.Event) -> None:
    agent = ev.payload_of(event, ev.AgentV1)
    await repo.upsert_newer(
        session,
        AgentRecord,
        {
            "id": agent.agent_id,
            "name": agent.name,
            "email": agent.email,
            "skills": agent.skills,
            "timezone": agent.timezone,
            "working_hours": agent.working_hours,
            "capacity": agent.capacity,
            "active": agent.active,
            "source_updated_at": event.occurred_at,
        },
    )


async def apply_organization(session: AsyncSession, event: ev.Event) -> None:
    organization = ev.payload_of(event, ev.OrganizationV1)
    await repo.upsert_newer(
        session,
        OrganizationRecord,
        {
            "id": organization.organization_id,
            "name": organization.name,
            "support_tier": organization.support_tier,
            "timezone": organization.timezone,
            "source_updated_at": event.occurred_at,
        },
    )


_SNAPSHOT_TYPES: dict[str, type[ev.TicketSnapshotV1]] = {
    ev.EventType.TICKET_CREATED: ev.TicketCreatedV1,
    ev.EventType.TICKET_UPDATED: ev.TicketUpdatedV1,
    ev.EventType.TICKET_STATUS_CHANGED: ev.TicketStatusChangedV1,
    ev.EventType.TICKET_CLOSED: ev.TicketClosedV1,
    ev.EventType.TICKET_MESSAGE_ADDED: ev.TicketMessageAddedV1,
}


def _snapshot_values(snapshot: ev.TicketSnapshotV1) -> dict[str, Any]:
    return {
        "number": snapshot.number,
        "subject": snapshot.subject,
        "urgency": snapshot.urgency,
        "impact": snapshot.impact,
        "category": snapshot.category,
        "status": snapshot.status,
        "priority": snapshot.priority,
        "assignee_id": snapshot.assignee_id,
        "organization_id": snapshot.organization.id if snapshot.organization else None,
        "contact_id": snapshot.contact.id,
        "contact": snapshot.contact.model_dump(mode="json"),
        "organization": snapshot.organization.model_dump(mode="json") if snapshot.organization else None,
        "snapshot_updated_at": snapshot.updated_at,
    }


async def _sync_ticket(session: AsyncSession, snapshot: ev.TicketSnapshotV1) -> TicketRecord:
    """The ticket's projection, locked, brought up to ``snapshot`` unless it is older than
    what is already known (events may arrive out of order)."""
    values = _snapshot_values(snapshot)
    ticket, created = await repo.lock_ticket(
        session,
        {
            "id": snapshot.ticket_id,
            "created_at": snapshot.created_at,
            "description": getattr(snapshot, "description", None),
            **values,
        },
    )
    if not created and snapshot.updated_at >= ticket.snapshot_updated_at:
        for key, value in values.items():
            setattr(ticket, key, value)
    if ticket.description is None and isinstance(snapshot, ev.TicketCreatedV1):
        ticket.description = snapshot.description
    return ticket


async def on_ticket_event(session: AsyncSession, event: ev.Event, context: Context) -> None:
    """Every ticket event: keep the projection, triage a ticket seen for the first time, and
    move its SLA timers (pause, resume, stop, first response)."""
    snapshot = ev.payload_of(event, _SNAPSHOT_TYPES[event.type])
    ticket = await _sync_ticket(session, snapshot)
    await session.flush()
    if ticket.triaged_at is None:
        await triage_ticket(session, ticket, trigger="created", actor=ACTOR, context=context)
    elif isinstance(snapshot, ev.TicketUpdatedV1):
        await _on_ticket_updated(session, ticket, snapshot, context)

    if isinstance(snapshot, ev.TicketStatusChangedV1):
        await _on_status_changed(session, ticket, snapshot, event.occurred_at, context)
    elif (
        isinstance(snapshot, ev.TicketMessageAddedV1)
        and snapshot.author_kind == "agent"
        and snapshot.visibility == "public"
    ):
        await _first_response(
            session, ticket, event.occurred_at, context, source=f"message:{snapshot.message_id}"
        )


async def _on_ticket_updated(
    session: AsyncSession, ticket: TicketRecord, update: ev.TicketUpdatedV1, context: Context
) -> None:
    changed = set(update.changed)
    if changed & TRIAGE_INPUTS:
        await triage_ticket(
            session, ticket, trigger="inputs_changed", actor=ACTOR, context=context, reassign=False
        )
        return
    if "priority" in changed and update.priority and update.priority != ticket.expected_priority:
        # Someone other than triage set the priority: the SLA targets follow it. Triage's own
        # changes (its decisions, escalations) come back with expected_priority: nothing to do.
        await _retarget(session, ticket, Priority(update.priority), context)


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
    first_response = rows.get(TargetKind.FIRST_RESPONSE.value)
    due = first_response.due_at if first_response is not None else None
    await _first_response(
        session,
        ticket,
        call_response_at(entry.started_at, event.occurred_at, ticket.created_at, due),
        context,
        source=source,
    )


def call_response_at(
    started_at: datetime, logged_at: datetime, created_at: datetime, due_at: datetime | None
) -> datetime:
    """When a logged call answered the ticket: its start, if it started while the ticket existed
    and was logged before the first response was due (or no due time is known); otherwise the
    moment it was logged."""
    if created_at <= started_at <= logged_at and (due_at is None or logged_at <= due_at):
        return started_at
    return logged_at


# --- triage --------------------------------------------------------------------------------------


def _timer_of(row: SlaTimer) -> Timer:
    return Timer(row.target_minutes, row.started_at, row.paused_at, row.paused_minutes)


def _refresh(row: SlaTimer, timer: Timer, calendar: BusinessCalendar, share: float) -> None:
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


async def _ticket_calendar(
    session: AsyncSession, ticket: TicketRecord
) -> tuple[str, BusinessCalendar, str | None]:
    organization = (
        await repo.get_organization(session, ticket.organization_id) if ticket.organization_id else None
    )
    tier = organization.support_tier if organization else (ticket.organization or {}).get("support_tier")
    name = _calendar_name_of(organization)
    return name, await calendar_named(session, name), tier


def _calendar_name_of(organization: OrganizationRecord | None) -> str:
    return organization.calendar_name if organization and organization.calendar_name else DEFAULT_CALENDAR


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
    name = _calendar_name_of(organization)
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


def clock_start_reason(
    arrived_at: datetime, clock_started_at: datetime, calendar: BusinessCalendar
) -> str | None:
    """Why counting starts after the arrival: the closed days' names, or after hours; None
    when it starts at the arrival."""
    if clock_started_at <= arrived_at:
        return None
    closed = closed_days_between(arrived_at, clock_started_at, calendar)
    if not closed:
        return "outside office hours"
    return "; ".join(f"{day.isoformat()}: {name}" for day, name in closed)


async def triage_ticket(
    session: AsyncSession,
    ticket: TicketRecord,
    *,
    trigger: str,
    actor: str,
    context: Context,
    reassign: bool = False,
) -> TriageDecision:
    """Decide priority, SLA due times and (for an unassigned ticket, or when ``reassign``)
    the assignee; store the decision and its breakdown; start or retarget the timers; tell
    ticket_api and notifier (``ticket.triaged``) when the priority or assignee changes."""
    now = context.clock()
    calendar_name, calendar, tier = await _ticket_calendar(session, ticket)
    # Timers are made by triage: a ticket never triaged has none.
    rows = await repo.timers_of(session, ticket.id) if ticket.triaged_at is not None else {}
    assign = reassign or ticket.assignee_id is None
    matrix, policies = await current_config(session)
    agents = await repo.roster(session, excluding_ticket=ticket.id) if assign else []
    decision = decide(
        TicketFacts(
            urgency=ticket.urgency,
            impact=ticket.impact,
            subject=ticket.subject,
            description=ticket.description,
            category=ticket.category,
            support_tier=tier,
            created_at=ticket.created_at,
        ),
        matrix=matrix,
        policies=policies,
        calendar=calendar,
        calendar_name=calendar_name,
        agents=agents,
        now=now,
        previous_agent_id=await repo.previous_assignee(session, ticket) if assign else None,
        timers={TargetKind(kind): _timer_of(row) for kind, row in rows.items()},
        assign=assign,
    )
    for kind, timer in decision.timers.items():
        row = rows.get(kind.value)
        if row is None:
            row = SlaTimer(
                ticket_id=ticket.id,
                target=kind.value,
                target_minutes=timer.target_minutes,
                calendar_name=calendar_name,
                started_at=timer.started_at,
            )
            session.add(row)
        row.calendar_name = calendar_name
        _refresh(row, timer, calendar, context.warning_share)

    priority = decision.priority.priority.value
    new_assignee = decision.assignee_id if assign else None
    assignee_changed = new_assignee is not None and new_assignee != ticket.assignee_id
    # Compared with what triage asked for last, not with the projection: a snapshot taken
    # before ticket_api applied that decision may have arrived since.
    changed = trigger == "created" or priority != ticket.expected_priority or assignee_changed
    stored = TriageDecision(
        ticket_id=ticket.id,
        trigger=trigger,
        actor=actor,
        priority=priority,
        assignee_id=new_assignee if assign else ticket.assignee_id,
        first_response_due_at=decision.due[TargetKind.FIRST_RESPONSE],
        resolution_due_at=decision.due[TargetKind.RESOLUTION],
        call_customer=decision.call_customer,
        breakdown=decision.breakdown(),
        created_at=now,
    )
    session.add(stored)
    # Triage's view runs ahead of ticket_api's echo, so the next decision sees this load.
    ticket.expected_priority = ticket.priority = priority
    if new_assignee is not None:
        ticket.assignee_id = new_assignee
    ticket.triaged_at = now
    await session.flush()
    if changed:
        assignee = next((a for a in agents if a.agent_id == stored.assignee_id), None)
        await _record_triaged(
            session,
            ticket,
            stored,
            decision,
            assignee_changed=assignee_changed,
            assignee=ev.AgentRef(id=assignee.agent_id, name=assignee.name, email=assignee.email)
            if assignee
            else await _agent_ref(session, stored.assignee_id),
        )
    return stored


async def _agent_ref(session: AsyncSession, agent_id: UUID | None) -> ev.AgentRef | None:
    agent = await repo.get_agent(session, agent_id) if agent_id else None
    return ev.AgentRef(id=agent.id, name=agent.name, email=agent.email) if agent else None


def _refs(ticket: TicketRecord) -> tuple[ev.ContactRef, ev.OrganizationRef | None]:
    contact = ev.ContactRef.model_validate(ticket.contact)
    organization = ev.OrganizationRef.model_validate(ticket.organization) if ticket.organization else None
    return contact, organization


async def _record_triaged(
    session: AsyncSession,
    ticket: TicketRecord,
    stored: TriageDecision,
    decision: Decision,
    *,
    assignee_changed: bool,
    assignee: ev.AgentRef | None,
) -> None:
    contact, organization = _refs(ticket)
    assignment = decision.assignment
    first_response_due = decision.due[TargetKind.FIRST_RESPONSE]
    resolution_due = decision.due[TargetKind.RESOLUTION]
    priority = decision.priority
    clock_started_at = next_business_instant(
        decision.timers[TargetKind.FIRST_RESPONSE].started_at, decision.calendar
    )
    payload = ev.TicketTriagedV1(
        decision_id=stored.id,
        trigger=stored.trigger,
        ticket_id=ticket.id,
        number=ticket.number,
        subject=ticket.subject,
        priority=stored.priority,
        assignee=assignee,
        assignee_changed=assignee_changed,
        unassigned_reason=assignment.reason if assignment and assignment.agent_id is None else None,
        first_response_due_at=first_response_due,
        resolution_due_at=resolution_due,
        calendar_timezone=decision.calendar.timezone,
        call_customer=decision.call_customer,
        breakdown=ev.TriageBreakdownV1(
            urgency=priority.urgency.value,
            impact=priority.impact.value,
            impact_source=priority.impact_source,
            impact_reason=priority.impact_reason,
            matrix_priority=priority.matrix_priority.value,
            support_tier=priority.support_tier,
            tier_adjustment=priority.tier_adjustment,
            assignment_reason=assignment.reason if assignment else "kept the current assignee",
            continuity=bool(assignment and assignment.continuity),
        ),
        contact=contact,
        organization=organization,
        first_response_target_minutes=decision.targets.first_response_minutes,
        first_response_clock_started_at=clock_started_at,
        closed_days=[
            ev.ClosedDayV1(day=day, name=name)
            for day, name in closed_days_between(ticket.created_at, clock_started_at, decision.calendar)
        ]
        if clock_started_at > ticket.created_at
        else [],
        calendar=ev.SlaCalendarV1.model_validate(decision.calendar.closed_days.as_dict()),
    )
    await record(
        session,
        ev.new_event(ev.EventType.TICKET_TRIAGED, payload, producer=PRODUCER, subject=f"ticket:{ticket.id}"),
    )


async def _retarget(
    session: AsyncSession, ticket: TicketRecord, priority: Priority, context: Context
) -> None:
    calendar_name, calendar, tier = await _ticket_calendar(session, ticket)
    targets, _source = (await current_policies(session)).targets_for(tier, priority)
    for kind, row in (await repo.timers_of(session, ticket.id)).items():
        timer = _timer_of(row).retarget(targets.of(TargetKind(kind)))
        row.calendar_name = calendar_name
        _refresh(row, timer, calendar, context.warning_share)
    ticket.expected_priority = priority.value
    await session.flush()


# --- timers --------------------------------------------------------------------------------------


async def _move_timers(
    session: AsyncSession,
    ticket: TicketRecord,
    context: Context,
    change: Callable[[SlaTimer, Timer, BusinessCalendar], Timer],
) -> None:
    # Each timer keeps counting in the calendar it started with (until triaged again).
    for row in (await repo.timers_of(session, ticket.id)).values():
        calendar = await calendar_named(session, row.calendar_name)
        timer = change(row, _timer_of(row), calendar)
        _refresh(row, timer, calendar, context.warning_share)
    await session.flush()


async def _on_status_changed(
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
        if target == CLOSED:
            if row.met_at is not None or row.stopped_at is not None:
                return timer  # done already (a first response given): it stays as it is
            if row.target == TargetKind.RESOLUTION:
                row.met_at = at
            else:
                row.stopped_at = at
            return timer.pause(at)  # a reopened ticket resumes counting from its reopening
        if source == CLOSED and timer.is_paused:
            # Reopened: what closing ended counts again.
            if row.target == TargetKind.RESOLUTION:
                row.met_at = None
            row.stopped_at = None
        if target == PENDING_CUSTOMER:
            return timer.pause(at) if row.met_at is None else timer
        return timer.resume(at, calendar)

    await _move_timers(session, ticket, context, move)


async def _first_response(
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


# --- the watcher ---------------------------------------------------------------------------------


async def watch_timers(session: AsyncSession, *, now: datetime, context: Context, limit: int) -> int:
    """One pass of the SLA watcher: for each timer whose next alert has come, send
    ``sla.warning`` (at the warning share) or ``sla.breached`` (at the due time; escalates),
    each at most once per ticket and target. Returns how many timers it looked at."""
    rows = await repo.due_timers(session, now=now, limit=limit)
    calendars: dict[str, BusinessCalendar] = {}
    for row, ticket in rows:
        if row.calendar_name not in calendars:
            calendars[row.calendar_name] = await calendar_named(session, row.calendar_name)
        if row.due_at is not None and row.due_at <= now and row.breached_at is None:
            await _alert(session, ticket, row, "breached", context)
            row.breached_at = now
            row.warning_sent_at = row.warning_sent_at or now  # a warning after the breach says nothing
        elif row.warn_at is not None and row.warn_at <= now and row.warning_sent_at is None:
            await _alert(session, ticket, row, "warning", context)
            row.warning_sent_at = now
        _refresh(row, _timer_of(row), calendars[row.calendar_name], context.warning_share)
    await session.flush()
    return len(rows)


async def _alert(
    session: AsyncSession, ticket: TicketRecord, row: SlaTimer, kind: str, context: Context
) -> None:
    assert row.due_at is not None
    contact, organization = _refs(ticket)
    assignee = await _agent_ref(session, ticket.assignee_id)
    common = {
        "ticket_id": ticket.id,
        "number": ticket.number,
        "subject": ticket.subject,
        "target": row.target,
        "target_minutes": row.target_minutes,
        "due_at": row.due_at,
        "priority": ticket.priority,
        "assignee": assignee,
        "contact": contact,
        "organization": organization,
    }
    subject = f"ticket:{ticket.id}"
    current = ticket.priority or ticket.expected_priority
    escalated = (
        escalation_of(current, already_escalated=await repo.breach_alerted(session, ticket.id))
        if kind == "breached"
        else None
    )
    if kind == "warning":
        event = ev.new_event(
            ev.EventType.SLA_WARNING,
            ev.SlaWarningV1(**common, share=context.warning_share),
            producer=PRODUCER,
            subject=subject,
        )
    else:
        event = ev.new_event(
            ev.EventType.SLA_BREACHED,
            ev.SlaBreachedV1(**common, escalated_priority=escalated),
            producer=PRODUCER,
            subject=subject,
        )
    claimed = await repo.claim_alert(
        session, ticket_id=ticket.id, target=row.target, kind=kind, due_at=row.due_at, event_id=event.id
    )
    if not claimed:
        return
    await record(session, event)
    if kind == "breached" and escalated is not None:
        # ticket_api raises the priority; its ticket.updated coming back is our own change.
        ticket.expected_priority = ticket.priority = escalated


def escalation_of(priority: str | None, *, already_escalated: bool) -> str | None:
    """The priority a breach raises the ticket to: one level up, once per ticket (a ticket
    missing both targets is raised once, not twice), and none for a P1 (nothing is higher)."""
    if priority is None or already_escalated:
        return None
    raised = Priority(priority).raised(1)
    return raised.value if raised.value != priority else None


# --- reading -------------------------------------------------------------------------------------


async def known_ticket(session: AsyncSession, ticket_id: UUID, *, for_update: bool = False) -> TicketRecord:
    ticket = await repo.get_ticket(session, ticket_id, for_update=for_update)
    if ticket is None:
        raise TicketNotFound(f"Triage has no ticket {ticket_id} (yet).")
    return ticket


async def sla_status(session: AsyncSession, ticket_id: UUID, now: datetime) -> SlaStatus:
    ticket = await known_ticket(session, ticket_id)
    timers: list[TimerStatus] = []
    rows = await repo.timers_of(session, ticket.id)
    for kind in TargetKind:
        row = rows.get(kind.value)
        if row is None:
            continue
        calendar = await calendar_named(session, row.calendar_name)
        timer = _timer_of(row)
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
