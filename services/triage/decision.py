"""One triage decision, composed from the pure pieces: priority (matrix x tier), SLA targets
and due times (policies x calendar), assignee (roster x load), and the breakdown that
explains it. No I/O: ``triaging.py`` loads the inputs and stores the result."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from services.triage.assignment import AgentProfile, Assignment, choose_assignee, needed_skill_of
from services.triage.business_hours import BusinessCalendar, next_business_instant
from services.triage.priority_matrix import Priority, PriorityBreakdown, PriorityMatrix, assess_impact
from services.triage.sla import SlaPolicies, TargetKind, Targets, Timer
from shared.vocabulary import SupportTier

# Tickets of these tiers at these priorities carry a "call the customer" task.
CALL_CUSTOMER_TIERS = frozenset({SupportTier.AGREEMENT})
CALL_CUSTOMER_PRIORITIES = frozenset({Priority.P1, Priority.P2})


@dataclass(frozen=True)
class TicketFacts:
    """What a decision is made from."""

    urgency: str
    impact: str | None
    subject: str
    description: str | None
    category: str | None
    support_tier: str | None
    created_at: datetime
    current_assignee_id: UUID | None = None


@dataclass(frozen=True)
class Decision:
    priority: PriorityBreakdown
    targets: Targets
    targets_source: str
    timers: dict[TargetKind, Timer]
    due: dict[TargetKind, datetime | None]
    assignment: Assignment | None
    call_customer: bool
    calendar_name: str
    calendar: BusinessCalendar

    @property
    def assignee_id(self) -> UUID | None:
        return self.assignment.agent_id if self.assignment else None

    def breakdown(self) -> dict[str, Any]:
        first_response = self.timers[TargetKind.FIRST_RESPONSE]
        return {
            "priority": self.priority.as_dict(),
            "sla": {
                "calendar": self.calendar_name,
                "timezone": self.calendar.timezone,
                "targets_source": self.targets_source,
                "first_response_minutes": self.targets.first_response_minutes,
                "resolution_minutes": self.targets.resolution_minutes,
                "clock_started_at": next_business_instant(
                    first_response.started_at, self.calendar
                ).isoformat(),
                "first_response_due_at": _iso(self.due[TargetKind.FIRST_RESPONSE]),
                "resolution_due_at": _iso(self.due[TargetKind.RESOLUTION]),
            },
            "assignment": self.assignment.as_dict()
            if self.assignment
            else {"reason": "kept the current assignee"},
            "call_customer": self.call_customer,
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


@dataclass(frozen=True)
class SlaPlan:
    """The SLA of a ticket of one priority arriving at one instant: targets, timers, due
    times. The one computation behind a decision and behind the SLA preview."""

    targets: Targets
    targets_source: str
    timers: dict[TargetKind, Timer]
    due: dict[TargetKind, datetime | None]
    clock_started_at: datetime


def plan_sla(
    policies: SlaPolicies,
    calendar: BusinessCalendar,
    support_tier: str | None,
    priority: Priority,
    *,
    started_at: datetime,
    timers: dict[TargetKind, Timer] | None = None,
) -> SlaPlan:
    """Targets of ``support_tier`` x ``priority`` counted in ``calendar`` from ``started_at``;
    ``timers`` (a ticket's running ones, triaged again) keep their start and pauses and take
    the new targets."""
    targets, source = policies.targets_for(support_tier, priority)
    new_timers = {
        kind: (
            timers[kind].retarget(targets.of(kind))
            if timers and kind in timers
            else Timer(targets.of(kind), started_at)
        )
        for kind in TargetKind
    }
    return SlaPlan(
        targets=targets,
        targets_source=source,
        timers=new_timers,
        due={kind: timer.due_at(calendar) for kind, timer in new_timers.items()},
        clock_started_at=next_business_instant(new_timers[TargetKind.FIRST_RESPONSE].started_at, calendar),
    )


def decide(
    facts: TicketFacts,
    *,
    matrix: PriorityMatrix,
    policies: SlaPolicies,
    calendar: BusinessCalendar,
    calendar_name: str,
    agents: Iterable[AgentProfile],
    now: datetime,
    previous_agent_id: UUID | None = None,
    timers: dict[TargetKind, Timer] | None = None,
    assign: bool = True,
) -> Decision:
    """Decide priority, targets, due times and (when ``assign``) the assignee.

    ``timers`` are the ticket's running timers when it is triaged again: they keep their start
    and pauses and take the new targets; without them, timers start at ``facts.created_at``."""
    assessment = assess_impact(facts.impact, facts.subject, facts.description)
    priority = matrix.prioritize(facts.urgency, assessment, facts.support_tier)
    plan = plan_sla(
        policies, calendar, facts.support_tier, priority.priority, started_at=facts.created_at, timers=timers
    )
    targets, source, new_timers, due = plan.targets, plan.targets_source, plan.timers, plan.due
    assignment = (
        choose_assignee(
            agents,
            needed_skill=needed_skill_of(facts.category),
            now=now,
            previous_agent_id=previous_agent_id,
            respond_by=due[TargetKind.FIRST_RESPONSE],
        )
        if assign
        else None
    )
    call_customer = (
        facts.support_tier in CALL_CUSTOMER_TIERS and priority.priority in CALL_CUSTOMER_PRIORITIES
    )
    return Decision(
        priority=priority,
        targets=targets,
        targets_source=source,
        timers=new_timers,
        due=due,
        assignment=assignment,
        call_customer=call_customer,
        calendar_name=calendar_name,
        calendar=calendar,
    )
