"""Triage's event handlers on PostgreSQL and SQLite: projections, decisions, timers, and no loops."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import select

from services.triage import sla_clock
from services.triage.models import SlaTimer, TicketRecord, TriageDecision
from shared import events as ev
from shared.ids import new_id
from tests.triage.conftest import (
    Ticket,
    Triage,
    agent_event,
    chicago,
    organization_event,
    organization_ref,
)

ALICE, BOB = UUID(int=1), UUID(int=2)


async def decisions(triage: Triage, ticket_id: UUID) -> list[TriageDecision]:
    async with triage.runtime.sessions() as session:
        rows = await session.scalars(
            select(TriageDecision).where(TriageDecision.ticket_id == ticket_id).order_by(TriageDecision.id)
        )
        return list(rows.all())


async def timers(triage: Triage, ticket_id: UUID) -> dict[str, SlaTimer]:
    async with triage.runtime.sessions() as session:
        rows = await session.scalars(select(SlaTimer).where(SlaTimer.ticket_id == ticket_id))
        return {row.target: row for row in rows.all()}


async def projected(triage: Triage, ticket_id: UUID) -> TicketRecord:
    async with triage.runtime.sessions() as session:
        ticket = await session.get(TicketRecord, ticket_id)
        assert ticket is not None
        return ticket


async def setup_team(triage: Triage, tier: str = "hourly") -> UUID:
    organization_id = new_id()
    await triage.consume(
        organization_event(organization_id, tier),
        agent_event(ALICE, "Alice"),
        agent_event(BOB, "Bob"),
    )
    return organization_id


def payload(event: ev.Event) -> ev.TicketTriagedV1:
    return ev.payload_of(event, ev.TicketTriagedV1)


async def test_s1_a_new_ticket_is_prioritized_assigned_and_due_in_four_business_hours(triage: Triage) -> None:
    organization_id = await setup_team(triage)
    ticket = Ticket(organization=organization_ref(organization_id))
    assert await triage.consume(ticket.created()) == ["applied"]

    (triaged,) = await triage.emitted("ticket.triaged")
    decision = payload(triaged)
    assert decision.priority == "P2"
    assert decision.first_response_due_at == chicago(2026, 11, 24, 14, 0)
    assert decision.assignee is not None and decision.assignee.id == ALICE, "equal loads: lowest id"
    assert decision.assignee.email == "alice@helpdesk.test"
    assert decision.call_customer is False
    assert decision.breakdown.impact_source == "inferred"
    assert decision.contact.email == "jane@acme.test"
    assert triaged.subject == f"ticket:{ticket.ticket_id}"

    (stored,) = await decisions(triage, ticket.ticket_id)
    assert stored.id == decision.decision_id
    assert stored.breakdown["priority"]["matrix_priority"] == "P2"
    assert {c["name"] for c in stored.breakdown["assignment"]["candidates"]} == {"Alice", "Bob"}

    # The next ticket goes to Bob: Alice now carries a P2.
    other = Ticket(organization=None, number="TKT-2")
    await triage.consume(other.created())
    assert payload((await triage.emitted("ticket.triaged"))[-1]).assignee.id == BOB  # type: ignore[union-attr]


async def test_s2_after_hours_the_clock_starts_next_business_morning(triage: Triage) -> None:
    await setup_team(triage)
    friday_evening = chicago(2026, 11, 20, 18, 30)
    triage.clock.now = friday_evening
    ticket = Ticket(created_at=friday_evening)
    await triage.consume(ticket.created())
    decision = payload((await triage.emitted("ticket.triaged"))[0])
    assert decision.first_response_due_at == chicago(2026, 11, 23, 13, 0)
    assert "next on shift at" in decision.breakdown.assignment_reason


async def test_a_ticket_on_a_holiday_carries_the_holidays_name(triage: Triage) -> None:
    await setup_team(triage)
    wednesday_evening = chicago(2026, 11, 25, 18, 0)  # Thanksgiving is tomorrow
    triage.clock.now = wednesday_evening
    await triage.consume(Ticket(created_at=wednesday_evening).created())
    decision = payload((await triage.emitted("ticket.triaged"))[0])
    assert decision.first_response_clock_started_at == chicago(2026, 11, 27, 9, 0)
    assert [(d.day.isoformat(), d.name) for d in decision.closed_days] == [("2026-11-26", "Thanksgiving Day")]


async def test_an_urgent_agreement_ticket_is_p1_with_a_call_task(triage: Triage) -> None:
    organization_id = await setup_team(triage, "agreement")
    ticket = Ticket(organization=organization_ref(organization_id, "agreement"))
    await triage.consume(ticket.created())
    decision = payload((await triage.emitted("ticket.triaged"))[0])
    assert (decision.priority, decision.call_customer) == ("P1", True)
    assert decision.breakdown.tier_adjustment == 1
    assert decision.first_response_due_at == chicago(2026, 11, 24, 11, 0)


async def test_the_tier_comes_from_the_organization_projection_when_newer(triage: Triage) -> None:
    organization_id = new_id()
    await triage.consume(
        agent_event(ALICE, "Alice"),
        organization_event(organization_id, "hourly", at=chicago(2026, 1, 1, 9, 0)),
        organization_event(
            organization_id, "agreement", at=chicago(2026, 2, 1, 9, 0), kind=ev.EventType.ORGANIZATION_UPDATED
        ),
        # An older update arriving late changes nothing.
        organization_event(
            organization_id, "block", at=chicago(2026, 1, 15, 9, 0), kind=ev.EventType.ORGANIZATION_UPDATED
        ),
    )
    ticket = Ticket(organization=organization_ref(organization_id, "hourly"))
    await triage.consume(ticket.created())
    assert payload((await triage.emitted("ticket.triaged"))[0]).breakdown.support_tier == "agreement"


async def test_nobody_fits_leaves_it_unassigned_and_says_why(triage: Triage) -> None:
    await triage.consume(agent_event(ALICE, "Alice", skills=("networks",)))
    ticket = Ticket()
    await triage.consume(ticket.created())
    decision = payload((await triage.emitted("ticket.triaged"))[0])
    assert decision.assignee is None
    assert decision.unassigned_reason == "nobody fits: lacks skill 'printers'"


async def test_the_organizations_previous_consultant_is_preferred(triage: Triage) -> None:
    organization_id = await setup_team(triage)
    await triage.consume(
        agent_event(
            BOB, "Bob", skills=("networks",), kind=ev.EventType.AGENT_UPDATED, at=chicago(2026, 2, 1, 9, 0)
        )
    )
    first = Ticket(organization=organization_ref(organization_id), category=None)
    await triage.consume(first.created())  # Alice (lowest id)
    # Printer tickets only Alice can take make her the busier one.
    for n in range(2):
        await triage.consume(Ticket(number=f"TKT-{10 + n}", category="printers").created())
    second = Ticket(organization=organization_ref(organization_id), number="TKT-3", category=None)
    await triage.consume(second.created())
    decision = payload((await triage.emitted("ticket.triaged"))[-1])
    assert decision.assignee is not None and decision.assignee.id == ALICE
    assert decision.breakdown.continuity is True


async def test_triages_own_changes_coming_back_trigger_nothing(triage: Triage) -> None:
    await setup_team(triage)
    ticket = Ticket()
    await triage.consume(ticket.created())
    # ticket_api applies the decision and announces it.
    echo = ticket.updated(chicago(2026, 11, 24, 10, 1), priority="P2", assignee_id=ALICE)
    await triage.consume(echo)
    assert len(await triage.emitted("ticket.triaged")) == 1
    assert len(await decisions(triage, ticket.ticket_id)) == 1
    assert (await projected(triage, ticket.ticket_id)).assignee_id == ALICE


async def test_a_manual_priority_change_moves_the_targets_without_a_new_decision(triage: Triage) -> None:
    await setup_team(triage)
    ticket = Ticket()
    await triage.consume(ticket.created(), ticket.updated(chicago(2026, 11, 24, 10, 1), priority="P2"))
    await triage.consume(ticket.updated(chicago(2026, 11, 24, 10, 5), priority="P1"))
    assert len(await triage.emitted("ticket.triaged")) == 1
    first_response = (await timers(triage, ticket.ticket_id))["first_response"]
    assert (first_response.target_minutes, first_response.due_at) == (60, chicago(2026, 11, 24, 11, 0))


async def test_new_inputs_trigger_a_new_decision_keeping_the_assignee(triage: Triage) -> None:
    await setup_team(triage)
    ticket = Ticket()
    await triage.consume(ticket.created())
    await triage.consume(ticket.updated(chicago(2026, 11, 24, 10, 1), priority="P2", assignee_id=ALICE))
    await triage.consume(ticket.updated(chicago(2026, 11, 24, 11, 0), urgency="low"))
    _first, second = await triage.emitted("ticket.triaged")
    assert (payload(second).priority, payload(second).trigger) == ("P4", "inputs_changed")
    assert payload(second).assignee is not None and payload(second).assignee.id == ALICE  # type: ignore[union-attr]
    assert payload(second).breakdown.assignment_reason == "kept the current assignee"
    assert (payload(_first).assignee_changed, payload(second).assignee_changed) == (True, False)
    # Same inputs again (e.g. category unchanged but re-sent): nothing new to tell.
    await triage.consume(ticket.updated(chicago(2026, 11, 24, 11, 5), category="printers"))
    assert len(await triage.emitted("ticket.triaged")) == 2


async def test_waiting_on_the_customer_pauses_and_the_reply_resumes(triage: Triage) -> None:
    await setup_team(triage)
    ticket = Ticket(created_at=chicago(2026, 11, 24, 9, 0))
    await triage.consume(ticket.created(), ticket.message(chicago(2026, 11, 24, 9, 30)))
    await triage.consume(ticket.status_changed("open", chicago(2026, 11, 24, 9, 30)))
    await triage.consume(ticket.status_changed("pending_customer", chicago(2026, 11, 24, 10, 0)))
    resolution = (await timers(triage, ticket.ticket_id))["resolution"]
    assert (resolution.due_at, resolution.paused_at, resolution.next_alert_at) == (
        None,
        chicago(2026, 11, 24, 10, 0),
        None,
    )
    await triage.consume(ticket.status_changed("open", chicago(2026, 11, 25, 11, 0)))
    resolution = (await timers(triage, ticket.ticket_id))["resolution"]
    # P2 resolution: 3 business days from Tuesday 09:00, plus 9 business hours paused.
    assert resolution.paused_minutes == 9 * 60
    assert resolution.due_at == chicago(2026, 12, 1, 10, 0), "33 business hours; Thanksgiving is closed"


async def test_first_response_is_a_public_agent_reply_or_a_logged_call(triage: Triage) -> None:
    await setup_team(triage)
    ticket = Ticket()
    await triage.consume(
        ticket.created(),
        ticket.message(chicago(2026, 11, 24, 10, 5), author_kind="customer"),
        ticket.message(chicago(2026, 11, 24, 10, 10), visibility="internal"),
    )
    assert (await timers(triage, ticket.ticket_id))["first_response"].met_at is None
    await triage.consume(ticket.message(chicago(2026, 11, 24, 10, 30)))
    first_response = (await timers(triage, ticket.ticket_id))["first_response"]
    assert (first_response.met_at, first_response.next_alert_at) == (chicago(2026, 11, 24, 10, 30), None)

    called = Ticket(number="TKT-2")
    await triage.consume(
        called.created(), called.call_logged(chicago(2026, 11, 24, 10, 15), ALICE, source="manual")
    )
    assert (await timers(triage, called.ticket_id))["first_response"].met_at is None
    await triage.consume(called.call_logged(chicago(2026, 11, 24, 10, 15), ALICE))
    assert (await timers(triage, called.ticket_id))["first_response"].met_at == chicago(2026, 11, 24, 10, 15)


async def test_a_call_logged_after_the_due_time_does_not_rewrite_the_record(triage: Triage) -> None:
    await setup_team(triage)
    ticket = Ticket()  # Tuesday 10:00, P2: first response due 14:00
    await triage.consume(ticket.created())
    # Started 11:00 (before the due time) but logged at 15:00: it counts from 15:00.
    await triage.consume(
        ticket.call_logged(chicago(2026, 11, 24, 11, 0), ALICE, logged_at=chicago(2026, 11, 24, 15, 0))
    )
    first_response = (await timers(triage, ticket.ticket_id))["first_response"]
    assert first_response.met_at == chicago(2026, 11, 24, 15, 0)
    assert first_response.met_at > first_response.due_at  # type: ignore[operator]
    async with triage.runtime.sessions() as session:
        status = await sla_clock.sla_status(session, ticket.ticket_id, chicago(2026, 11, 24, 16, 0))
    [first] = [t for t in status.timers if t.target == "first_response"]
    assert (first.state, first.breached) == ("met_late", True)

    # A call dated before the ticket existed answered nothing: it counts from its logging.
    early = Ticket(number="TKT-2")
    await triage.consume(
        early.created(),
        early.call_logged(chicago(2026, 11, 24, 9, 0), ALICE, logged_at=chicago(2026, 11, 24, 10, 30)),
    )
    assert (await timers(triage, early.ticket_id))["first_response"].met_at == chicago(2026, 11, 24, 10, 30)


async def test_a_deleted_call_reopens_the_first_response_clock(triage: Triage) -> None:
    await setup_team(triage)
    ticket = Ticket()
    entry = new_id()
    await triage.consume(
        ticket.created(), ticket.call_logged(chicago(2026, 11, 24, 10, 15), ALICE, entry_id=entry)
    )
    assert (await timers(triage, ticket.ticket_id))["first_response"].met_at == chicago(2026, 11, 24, 10, 15)
    await triage.consume(
        ticket.call_logged(
            chicago(2026, 11, 24, 10, 15),
            ALICE,
            entry_id=entry,
            deleted=True,
            logged_at=chicago(2026, 11, 24, 11),
        )
    )
    reopened = (await timers(triage, ticket.ticket_id))["first_response"]
    assert (reopened.met_at, reopened.next_alert_at) == (None, reopened.warn_at)
    assert (await projected(triage, ticket.ticket_id)).first_responded_at is None
    # A later public reply answers it.
    await triage.consume(ticket.message(chicago(2026, 11, 24, 12, 0)))
    assert (await timers(triage, ticket.ticket_id))["first_response"].met_at == chicago(2026, 11, 24, 12, 0)


async def test_closing_stops_the_clocks_and_reopening_resumes_resolution(triage: Triage) -> None:
    await setup_team(triage)
    ticket = Ticket(created_at=chicago(2026, 11, 24, 9, 0))
    await triage.consume(ticket.created(), ticket.status_changed("closed", chicago(2026, 11, 24, 10, 0)))
    state = await timers(triage, ticket.ticket_id)
    assert state["resolution"].met_at == chicago(2026, 11, 24, 10, 0)
    assert state["first_response"].stopped_at == chicago(2026, 11, 24, 10, 0)
    assert all(row.next_alert_at is None for row in state.values())
    await triage.consume(ticket.status_changed("open", chicago(2026, 11, 25, 9, 0)))
    resolution = (await timers(triage, ticket.ticket_id))["resolution"]
    assert resolution.met_at is None and resolution.paused_minutes == 7 * 60
    assert resolution.next_alert_at is not None

    # A first response given before closing stays met, its due time untouched, across a reopening.
    answered = Ticket(number="TKT-2", created_at=chicago(2026, 11, 24, 9, 0))
    await triage.consume(answered.created(), answered.message(chicago(2026, 11, 24, 9, 30)))
    await triage.consume(
        answered.status_changed("closed", chicago(2026, 11, 24, 10, 0)),
        answered.status_changed("open", chicago(2026, 11, 25, 9, 0)),
    )
    first_response = (await timers(triage, answered.ticket_id))["first_response"]
    assert (first_response.met_at, first_response.due_at, first_response.paused_minutes) == (
        chicago(2026, 11, 24, 9, 30),
        chicago(2026, 11, 24, 13, 0),
        0,
    )


async def test_events_arriving_out_of_order_still_triage_once(triage: Triage) -> None:
    await setup_team(triage)
    ticket = Ticket()
    created = ticket.created()
    opened = ticket.status_changed("open", chicago(2026, 11, 24, 10, 5))
    await triage.consume(opened, created, created)
    assert len(await triage.emitted("ticket.triaged")) == 1
    record = await projected(triage, ticket.ticket_id)
    assert (record.status, record.description) == ("open", "It stopped this morning. Urgent!")
    # A status change older than the one applied does not move the timers back.
    await triage.consume(ticket.status_changed("pending_customer", chicago(2026, 11, 24, 10, 1)))
    assert (await timers(triage, ticket.ticket_id))["resolution"].paused_at is None


async def test_agent_updates_keep_the_newest_state(triage: Triage) -> None:
    await triage.consume(
        agent_event(
            ALICE, "Alice", capacity=5, at=chicago(2026, 2, 1, 9, 0), kind=ev.EventType.AGENT_UPDATED
        ),
        agent_event(ALICE, "Alice", capacity=9, at=chicago(2026, 1, 1, 9, 0)),
    )
    await triage.consume(agent_event(ALICE, "Alice", active=False, at=chicago(2026, 3, 1, 9, 0)))
    ticket = Ticket()
    await triage.consume(ticket.created())
    assert payload((await triage.emitted("ticket.triaged"))[0]).assignee is None
