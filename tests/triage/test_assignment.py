from __future__ import annotations

from datetime import datetime
from uuid import UUID
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from services.triage.assignment import AgentProfile, choose_assignee, shift_start, weight_of
from services.triage.business_hours import BusinessCalendar
from services.triage.decision import TicketFacts, decide
from services.triage.priority_matrix import PriorityMatrix
from services.triage.sla import SlaPolicies, TargetKind
from shared.vocabulary import Priority

CHICAGO = ZoneInfo("America/Chicago")
TUESDAY_10 = datetime(2026, 11, 24, 10, 0, tzinfo=CHICAGO)
OFFICE = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}


def agent(n: int, **overrides: object) -> AgentProfile:
    fields: dict[str, object] = {
        "agent_id": UUID(int=n),
        "name": f"Agent {n}",
        "skills": frozenset({"printers"}),
        "timezone": "America/Chicago",
        "working_hours": OFFICE,
        "capacity": 10,
    }
    fields.update(overrides)
    return AgentProfile(**fields)  # type: ignore[arg-type]


def test_lowest_weighted_load_wins_among_the_skilled_on_shift() -> None:
    agents = [
        agent(1, weighted_load=8, open_tickets=1),
        agent(2, weighted_load=3, open_tickets=3),
        agent(3, weighted_load=1, skills=frozenset({"networks"})),
        agent(4, weighted_load=0, active=False),
        agent(5, weighted_load=0, open_tickets=10),
        agent(6, weighted_load=0, working_hours={}),
    ]
    result = choose_assignee(agents, needed_skill="printers", now=TUESDAY_10)
    assert result.agent_id == UUID(int=2)
    assert "lowest weighted open load (3)" in result.reason
    notes = {r.agent_id.int: r.note for r in result.reviews}
    assert notes == {
        1: "on shift",
        2: "on shift",
        3: "lacks skill 'printers'",
        4: "inactive",
        5: "at capacity (10/10 open)",
        6: "no working hours",
    }


def test_skills_match_case_insensitively_and_no_category_needs_no_skill() -> None:
    agents = [agent(1, skills=frozenset({"Printers"}))]
    assert choose_assignee(agents, needed_skill="printers", now=TUESDAY_10).agent_id == UUID(int=1)
    assert choose_assignee(
        [agent(2, skills=frozenset())], needed_skill=None, now=TUESDAY_10
    ).agent_id == UUID(int=2)


def test_on_shift_beats_a_lighter_load_off_shift() -> None:
    night = {day: [["20:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
    agents = [agent(1, weighted_load=9), agent(2, weighted_load=0, working_hours=night)]
    assert choose_assignee(agents, needed_skill=None, now=TUESDAY_10).agent_id == UUID(int=1)


def test_when_nobody_is_on_shift_the_soonest_starter_is_chosen() -> None:
    friday_evening = datetime(2026, 11, 20, 18, 30, tzinfo=CHICAGO)
    agents = [
        agent(1, weighted_load=0),  # Monday 09:00 Chicago
        agent(2, weighted_load=5, timezone="Europe/Berlin"),  # Monday 09:00 Berlin = 02:00 Chicago
    ]
    result = choose_assignee(agents, needed_skill=None, now=friday_evening)
    assert result.agent_id == UUID(int=2)
    assert "next on shift at 2026-11-23T08:00:00+00:00" in result.reason


def test_the_previous_consultant_is_preferred_when_eligible() -> None:
    agents = [agent(1, weighted_load=0), agent(2, weighted_load=6)]
    result = choose_assignee(agents, needed_skill=None, now=TUESDAY_10, previous_agent_id=UUID(int=2))
    assert (result.agent_id, result.continuity) == (UUID(int=2), True)
    # ... but not when at capacity.
    agents = [agent(1, weighted_load=0), agent(2, weighted_load=6, open_tickets=10)]
    result = choose_assignee(agents, needed_skill=None, now=TUESDAY_10, previous_agent_id=UUID(int=2))
    assert (result.agent_id, result.continuity) == (UUID(int=1), False)


def test_nobody_fits_leaves_the_ticket_unassigned_with_the_reason() -> None:
    result = choose_assignee([agent(1, skills=frozenset())], needed_skill="printers", now=TUESDAY_10)
    assert result.agent_id is None
    assert result.reason == "nobody fits: lacks skill 'printers'"
    assert choose_assignee([], needed_skill=None, now=TUESDAY_10).reason == "nobody fits: no agents known"
    assert result.as_dict()["candidates_reviewed"] == 1


def test_an_agent_with_a_broken_timezone_is_never_on_shift() -> None:
    assert shift_start(agent(1, timezone="Nowhere/Land"), TUESDAY_10) is None


@given(st.permutations(list(range(1, 7))), st.lists(st.integers(0, 3), min_size=6, max_size=6))
def test_the_choice_does_not_depend_on_roster_order(order: list[int], loads: list[int]) -> None:
    agents = [agent(n, weighted_load=loads[n - 1]) for n in order]
    chosen = choose_assignee(agents, needed_skill=None, now=TUESDAY_10).agent_id
    assert (
        chosen
        == choose_assignee(
            sorted(agents, key=lambda a: a.agent_id), needed_skill=None, now=TUESDAY_10
        ).agent_id
    )
    assert chosen == UUID(int=min(range(1, 7), key=lambda n: (loads[n - 1], n)))


def test_weights() -> None:
    assert [weight_of(p) for p in ("P1", "P2", "P3", "P4", None)] == [8, 4, 2, 1, 2]


def test_a_decision_composes_priority_targets_due_times_and_assignee() -> None:
    facts = TicketFacts(
        urgency="high",
        impact=None,
        subject="Printer offline",
        description="It stopped. Urgent!",
        category="printers",
        support_tier="agreement",
        created_at=datetime(2026, 11, 20, 18, 30, tzinfo=CHICAGO),
    )
    decision = decide(
        facts,
        matrix=PriorityMatrix.default(),
        policies=SlaPolicies.standard(),
        calendar=BusinessCalendar(),
        calendar_name="default",
        agents=[agent(1)],
        now=facts.created_at,
    )
    assert decision.priority.priority is Priority.P1
    assert decision.call_customer
    assert decision.due[TargetKind.FIRST_RESPONSE] == datetime(2026, 11, 23, 10, 0, tzinfo=CHICAGO)
    breakdown = decision.breakdown()
    assert breakdown["sla"]["clock_started_at"] == "2026-11-23T15:00:00+00:00"
    assert breakdown["priority"]["tier_adjustment"] == 1
    assert breakdown["assignment"]["agent_id"] == str(UUID(int=1))
    hourly = decide(
        TicketFacts(**{**facts.__dict__, "support_tier": "hourly"}),
        matrix=PriorityMatrix.default(),
        policies=SlaPolicies.standard(),
        calendar=BusinessCalendar(),
        calendar_name="default",
        agents=[],
        now=facts.created_at,
        assign=False,
    )
    assert (hourly.priority.priority, hourly.call_customer, hourly.assignment) == (Priority.P2, False, None)
    assert hourly.due[TargetKind.FIRST_RESPONSE] == datetime(2026, 11, 23, 13, 0, tzinfo=CHICAGO)


WEEKEND = {day: [["09:00", "17:00"]] for day in ("sat", "sun")}
FRIDAY_EVENING = datetime(2026, 11, 20, 18, 30, tzinfo=CHICAGO)


def test_a_weekend_only_consultant_is_not_given_a_monday_promise() -> None:
    # Friday evening, a P2 of an hourly customer: the first response is due Monday 13:00.
    due_monday = datetime(2026, 11, 23, 13, 0, tzinfo=CHICAGO)
    weekend, weekdays = agent(1, working_hours=WEEKEND), agent(2, weighted_load=20)
    result = choose_assignee(
        [weekend, weekdays], needed_skill=None, now=FRIDAY_EVENING, respond_by=due_monday
    )
    assert result.agent_id == UUID(int=2)
    assert "on shift when the first response is due" in result.reason
    notes = {r.agent_id: r.note for r in result.reviews}
    assert "not when it is due" in notes[UUID(int=1)]
    # Without the due time she would have it: her shift starts first (Saturday).
    assert choose_assignee([weekend, weekdays], needed_skill=None, now=FRIDAY_EVENING).agent_id == UUID(int=1)


def test_a_weekend_ticket_due_on_the_weekend_goes_to_the_weekend_consultant() -> None:
    saturday_10 = datetime(2026, 11, 21, 10, 0, tzinfo=CHICAGO)
    due = datetime(2026, 11, 21, 11, 0, tzinfo=CHICAGO)
    result = choose_assignee(
        [agent(1, working_hours=WEEKEND, weighted_load=30), agent(2)],
        needed_skill=None,
        now=saturday_10,
        respond_by=due,
    )
    assert (result.agent_id, result.reason.startswith("lowest weighted open load (30)")) == (
        UUID(int=1),
        True,
    )


def test_someone_working_before_the_due_time_beats_someone_off_until_after_it() -> None:
    # Due Monday 13:00; nobody works then. A works Monday morning, B only from Tuesday.
    due = datetime(2026, 11, 23, 13, 0, tzinfo=CHICAGO)
    mornings = {"mon": [["08:00", "12:00"]]}
    tuesdays = {"tue": [["09:00", "17:00"]]}
    result = choose_assignee(
        [agent(1, working_hours=tuesdays), agent(2, working_hours=mornings, weighted_load=50)],
        needed_skill=None,
        now=FRIDAY_EVENING,
        respond_by=due,
    )
    assert result.agent_id == UUID(int=2)
    # Nobody before the due time: the ticket waits for the next shift's consultant.
    late = choose_assignee(
        [agent(1, working_hours=tuesdays)], needed_skill=None, now=FRIDAY_EVENING, respond_by=due
    )
    assert late.agent_id == UUID(int=1)
    assert "off until after the first response is due" in late.reason


def test_a_decision_assigns_by_its_own_first_response_due_time() -> None:
    # The P3 of a Friday-evening ticket is due Monday: the weekday consultant, though busier.
    facts = TicketFacts("medium", None, "Printer offline", None, None, "hourly", FRIDAY_EVENING)
    roster = [agent(1, working_hours=WEEKEND), agent(2, weighted_load=20)]
    decision = decide(
        facts,
        matrix=PriorityMatrix.default(),
        policies=SlaPolicies.standard(),
        calendar=BusinessCalendar(timezone="America/Chicago"),
        calendar_name="default",
        agents=roster,
        now=FRIDAY_EVENING,
    )
    assert decision.assignee_id == UUID(int=2)
