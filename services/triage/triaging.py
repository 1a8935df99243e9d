"""Triaging a ticket: the pure decision (``decision.py``) applied. The decision is stored with
its breakdown, the SLA timers are started or retargeted, triage's view of the ticket runs ahead
of ticket_api's echo, and ``ticket.triaged`` is recorded when the priority or the assignee
changes; a ticket whose inputs change is triaged again, and a priority someone else set moves
the targets."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.triage import repository as repo
from services.triage.business_hours import closed_days_between, next_business_instant
from services.triage.configuration import current_config, current_policies, ticket_calendar
from services.triage.context import Context
from services.triage.decision import Decision, TicketFacts, decide
from services.triage.models import SlaTimer, TicketRecord, TriageDecision
from services.triage.projections import agent_ref, ticket_refs
from services.triage.sla import TargetKind
from services.triage.sla_clock import refresh, timer_of
from shared import events as ev
from shared.uow import UnitOfWork
from shared.vocabulary import Priority

ACTOR = "service:triage"
# Changes to these fields of a ticket are new inputs: the ticket is triaged again.
TRIAGE_INPUTS = frozenset({"urgency", "impact", "category"})


async def triage_ticket(
    uow: UnitOfWork,
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
    session = uow.session
    now = context.clock()
    calendar_name, calendar, tier = await ticket_calendar(session, ticket)
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
        timers={TargetKind(kind): timer_of(row) for kind, row in rows.items()},
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
        refresh(row, timer, calendar, context.warning_share)

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
            uow,
            ticket,
            stored,
            decision,
            assignee_changed=assignee_changed,
            assignee=ev.AgentRef(id=assignee.agent_id, name=assignee.name, email=assignee.email)
            if assignee
            else await agent_ref(session, stored.assignee_id),
        )
    return stored


async def _record_triaged(
    uow: UnitOfWork,
    ticket: TicketRecord,
    stored: TriageDecision,
    decision: Decision,
    *,
    assignee_changed: bool,
    assignee: ev.AgentRef | None,
) -> None:
    contact, organization = ticket_refs(ticket)
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
    await uow.emit(ev.EventType.TICKET_TRIAGED, payload, subject=f"ticket:{ticket.id}")


async def retarget(session: AsyncSession, ticket: TicketRecord, priority: Priority, context: Context) -> None:
    calendar_name, calendar, tier = await ticket_calendar(session, ticket)
    targets, _source = (await current_policies(session)).targets_for(tier, priority)
    for kind, row in (await repo.timers_of(session, ticket.id)).items():
        timer = timer_of(row).retarget(targets.of(TargetKind(kind)))
        row.calendar_name = calendar_name
        refresh(row, timer, calendar, context.warning_share)
    ticket.expected_priority = priority.value
    await session.flush()


async def on_ticket_updated(
    uow: UnitOfWork, ticket: TicketRecord, update: ev.TicketUpdatedV1, context: Context
) -> None:
    changed = set(update.changed)
    if changed & TRIAGE_INPUTS:
        await triage_ticket(
            uow, ticket, trigger="inputs_changed", actor=ACTOR, context=context, reassign=False
        )
        return
    if "priority" in changed and update.priority and update.priority != ticket.expected_priority:
        # Someone other than triage set the priority: the SLA targets follow it. Triage's own
        # changes (its decisions, escalations) come back with expected_priority: nothing to do.
        await retarget(uow.session, ticket, Priority(update.priority), context)
