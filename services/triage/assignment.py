"""Choosing the consultant for a ticket.

Candidates: active, with the needed skill (the ticket's category, when it has one), under
capacity (open tickets), with working hours. The promise of the acknowledgment is a first
response by the due time, so who is working *then* matters, not only who is working now.
Candidates are ranked, and only the best rank is eligible:

1. on shift when the first response is due (working in the minute before the due time);
2. otherwise, working at some time before the due time;
3. otherwise (nobody can answer in time) whoever starts soonest: the ticket waits for the
   next shift's consultant.

Within the rank, those on shift soonest (now, when any is) are eligible. Among the eligible the
organization's previous consultant is chosen (continuity); otherwise the lowest priority-weighted
open load, ties broken by open-ticket count, then agent id. Without a due time (a paused clock)
rank 1 is everyone. Nobody eligible: no assignee, and the reason says why (the team is alerted).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any
from uuid import UUID

from services.triage.business_hours import (
    BusinessCalendar,
    CalendarError,
    next_business_instant,
    parse_weekly_hours,
)
from shared.vocabulary import Priority

# How much an open ticket weighs in an agent's load, by priority (unprioritized: as P3).
PRIORITY_WEIGHTS: dict[Priority | None, int] = {
    Priority.P1: 8,
    Priority.P2: 4,
    Priority.P3: 2,
    Priority.P4: 1,
    None: 2,
}
# Candidates listed in a decision's breakdown (the rest are counted, not listed).
MAX_REVIEWED_IN_BREAKDOWN = 50


def weight_of(priority: str | None) -> int:
    return PRIORITY_WEIGHTS[Priority(priority) if priority else None]


@dataclass(frozen=True)
class AgentProfile:
    """What triage knows of an agent: the roster projection plus its open load."""

    agent_id: UUID
    name: str
    skills: frozenset[str]
    timezone: str
    working_hours: Mapping[str, Sequence[Sequence[str]]]
    capacity: int
    active: bool = True
    open_tickets: int = 0
    weighted_load: int = 0
    email: str = ""


@dataclass(frozen=True)
class Review:
    agent_id: UUID
    name: str
    eligible: bool
    note: str
    shift_starts_at: datetime | None = None
    open_tickets: int = 0
    weighted_load: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "agent_id": str(self.agent_id),
            "name": self.name,
            "eligible": self.eligible,
            "note": self.note,
            "shift_starts_at": self.shift_starts_at.isoformat() if self.shift_starts_at else None,
            "open_tickets": self.open_tickets,
            "weighted_load": self.weighted_load,
        }


@dataclass(frozen=True)
class Assignment:
    agent_id: UUID | None
    agent_name: str | None
    reason: str
    needed_skill: str | None
    continuity: bool = False
    reviews: tuple[Review, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return {
            "agent_id": str(self.agent_id) if self.agent_id else None,
            "agent_name": self.agent_name,
            "reason": self.reason,
            "needed_skill": self.needed_skill,
            "continuity": self.continuity,
            "candidates": [r.as_dict() for r in self.reviews[:MAX_REVIEWED_IN_BREAKDOWN]],
            "candidates_reviewed": len(self.reviews),
        }


HoursKey = tuple[tuple[str, tuple[tuple[str, ...], ...]], ...]


@lru_cache(maxsize=4096)
def _schedule(timezone: str, hours: HoursKey) -> BusinessCalendar | None:
    """An agent's working week as a calendar (no holidays); None when it has no valid hours.
    Cached: a roster is the same few schedules decision after decision."""
    try:
        week = parse_weekly_hours(
            {day: [list(span) for span in spans] for day, spans in hours}, require_hours=False
        )
        if not any(week):
            return None
        return BusinessCalendar(timezone=timezone, weekly_hours=week, holiday_country=None)
    except CalendarError:
        return None


def shift_start(agent: AgentProfile, now: datetime) -> datetime | None:
    """``now`` when the agent is on shift, else the start of their next shift; None when the
    agent has no (valid) working hours."""
    key = tuple(
        sorted((day, tuple(tuple(span) for span in spans)) for day, spans in agent.working_hours.items())
    )
    return _shift_start(agent.timezone, key, now)


@lru_cache(maxsize=4096)
def _shift_start(timezone: str, hours: HoursKey, now: datetime) -> datetime | None:
    # Cached too: agents sharing a schedule share the answer within one decision.
    schedule = _schedule(timezone, hours)
    if schedule is None:
        return None
    try:
        return next_business_instant(now, schedule)
    except OverflowError:
        return None


# "On shift when the first response is due": working during this last stretch before the due time.
_LAST_STRETCH = timedelta(minutes=1)


def promise_rank(agent: AgentProfile, starts: datetime, respond_by: datetime | None, now: datetime) -> int:
    """0: on shift when the first response is due; 1: working before it; 2: neither (see the
    module docstring). Without a due time, or one already past, everyone ranks 0."""
    if respond_by is None or respond_by <= now:
        return 0
    last_minute = max(respond_by - _LAST_STRETCH, now)
    if shift_start(agent, last_minute) == last_minute:
        return 0
    return 1 if starts < respond_by else 2


_RANK_NOTES = (
    "on shift when the first response is due",
    "works before the first response is due, not when it is due",
    "off until after the first response is due",
)


def needed_skill_of(category: str | None) -> str | None:
    return category.strip().lower() if category and category.strip() else None


def _exclusion(agent: AgentProfile, needed_skill: str | None) -> str | None:
    if not agent.active:
        return "inactive"
    if needed_skill and needed_skill not in {skill.lower() for skill in agent.skills}:
        return f"lacks skill {needed_skill!r}"
    if agent.open_tickets >= agent.capacity:
        return f"at capacity ({agent.open_tickets}/{agent.capacity} open)"
    return None


def choose_assignee(
    agents: Iterable[AgentProfile],
    *,
    needed_skill: str | None,
    now: datetime,
    previous_agent_id: UUID | None = None,
    respond_by: datetime | None = None,
) -> Assignment:
    """Pick the consultant (see the module docstring); every agent's review is kept.
    ``respond_by`` is when the ticket's first response is due."""
    reviews: list[Review] = []
    candidates: list[tuple[AgentProfile, datetime, int]] = []
    for agent in sorted(agents, key=lambda a: a.agent_id):
        excluded = _exclusion(agent, needed_skill)
        starts = shift_start(agent, now) if excluded is None else None
        if starts is not None:
            candidates.append((agent, starts, promise_rank(agent, starts, respond_by, now)))
            continue
        note = excluded or "no working hours"
        reviews.append(
            Review(
                agent.agent_id,
                agent.name,
                False,
                note,
                open_tickets=agent.open_tickets,
                weighted_load=agent.weighted_load,
            )
        )

    if not candidates:
        reason = "nobody fits: " + (
            "no agents known" if not reviews else "; ".join(sorted({r.note for r in reviews}))
        )
        return Assignment(None, None, reason, needed_skill, reviews=tuple(reviews))

    best_rank = min(rank for _, _, rank in candidates)
    soonest = min(starts for _, starts, rank in candidates if rank == best_rank)
    on_shift = soonest == now
    pool = [agent for agent, starts, rank in candidates if rank == best_rank and starts == soonest]
    pool_ids = {agent.agent_id for agent in pool}
    for agent, starts, rank in candidates:
        if agent.agent_id in pool_ids:
            note = "on shift" if on_shift else "starts soonest"
        else:
            note = "starts later" if rank == best_rank else "a better-placed consultant is available"
        if respond_by is not None:
            note = f"{note}; {_RANK_NOTES[rank]}"
        reviews.append(
            Review(
                agent.agent_id,
                agent.name,
                agent.agent_id in pool_ids,
                note,
                shift_starts_at=starts,
                open_tickets=agent.open_tickets,
                weighted_load=agent.weighted_load,
            )
        )
    reviews.sort(key=lambda r: (not r.eligible, r.weighted_load, r.agent_id))

    when = "on shift now" if on_shift else f"next on shift at {soonest.isoformat()}"
    if respond_by is not None:
        when = f"{when}, {_RANK_NOTES[best_rank]} ({respond_by.isoformat()})"
    previous = next((agent for agent in pool if agent.agent_id == previous_agent_id), None)
    if previous is not None:
        reason = f"continuity: the organization's previous consultant, {when}"
        return Assignment(previous.agent_id, previous.name, reason, needed_skill, True, tuple(reviews))
    chosen = min(pool, key=lambda a: (a.weighted_load, a.open_tickets, a.agent_id))
    reason = f"lowest weighted open load ({chosen.weighted_load}) among {len(pool)} eligible, {when}"
    return Assignment(chosen.agent_id, chosen.name, reason, needed_skill, False, tuple(reviews))
