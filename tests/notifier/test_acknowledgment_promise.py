"""The acknowledgment promises what triage's SLA holds: triage's due time and target when its
decision is known before the acknowledgment goes out (it normally is: the acknowledgment waits
a few seconds for it), notifier's office-hours estimate otherwise; exactly one acknowledgment
per ticket, whatever the order of ``ticket.created`` and ``ticket.triaged``."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import pytest

from services.notifier import repository as repo
from services.notifier.acknowledgment import PromiseSource, office_hours_promise, target_in_words
from services.notifier.delivery import sweep
from services.notifier.handlers.tickets import on_ticket_created, on_ticket_triaged
from services.notifier.models import DeliveryState, Notification, NotificationKind
from services.notifier.office_hours import OfficeHours
from services.notifier.settings import Settings
from shared import events as ev
from tests.fixtures.events import contact_ref, ticket_triaged, ticket_updated, triage_breakdown
from tests.notifier.conftest import (
    CHICAGO_TUESDAY_10,
    Env,
    TicketStory,
    agent_event,
    organization,
    ticket_status_link,
)

WAIT = 3.0

# Good Friday 2026, 16:00 in Vancouver: inside office hours on any other Friday; British
# Columbia's calendar (triage's) counts nothing until Monday 09:00.
GOOD_FRIDAY_16 = datetime(2026, 4, 3, 23, 0, tzinfo=UTC)
MONDAY_09_VANCOUVER = datetime(2026, 4, 6, 16, 0, tzinfo=UTC)
MONDAY_13_VANCOUVER = datetime(2026, 4, 6, 20, 0, tzinfo=UTC)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"ack_wait_for_triage_seconds": WAIT}


def northwind() -> ev.OrganizationRef:
    return ev.OrganizationRef(
        id=UUID("0194f3c2-7a10-7c3e-9d51-2b8e4f6a1c01"),
        name="Northwind",
        support_tier="hourly",
        sla_signed=True,
        timezone="America/Vancouver",
    )


def triaged(
    story: TicketStory,
    *,
    priority: str,
    due: datetime | None,
    target_minutes: int | None,
    clock_started_at: datetime | None,
    timezone: str = "America/Chicago",
    trigger: str = "created",
    occurred_at: datetime | None = None,
    assignee: ev.AgentRef | None = None,
    closed_days: tuple[ev.ClosedDayV1, ...] = (),
) -> ev.Event:
    return ticket_triaged(
        occurred_at=occurred_at,
        trigger=trigger,
        ticket_id=story.ticket_id,
        number=story.number,
        priority=priority,
        assignee=assignee,
        first_response_due_at=due,
        resolution_due_at=due + timedelta(days=2) if due else None,
        calendar_timezone=timezone,
        breakdown=triage_breakdown(matrix_priority=priority, assignment_reason="nobody on shift"),
        contact=contact_ref(email=story.contact_email),
        organization=story.org,
        first_response_target_minutes=target_minutes,
        first_response_clock_started_at=clock_started_at,
        closed_days=list(closed_days),
    )


def acknowledgments(env: Env) -> list[EmailMessage]:
    return [m for m in env.mail() if "We have received your request" in str(m["Subject"])]


def text_of(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content()).replace("\r\n", "\n")


async def acknowledgment_row(env: Env) -> Notification:
    [row] = [n for n in await env.notifications() if n.kind == NotificationKind.ACKNOWLEDGMENT]
    return row


async def sweep_now(env: Env) -> None:
    """What a worker's sweeper does on its next round (enqueue what is due), then run the jobs."""
    await sweep(env.notifier, grace=timedelta(0))
    await env.run_worker()


async def test_triage_decided_first_the_acknowledgment_goes_out_at_once_with_one_business_hour(
    env: Env,
) -> None:
    story = TicketStory(org=organization(sla_signed=True))  # Tuesday 10:00 in Chicago
    decision = triaged(
        story,
        priority="P1",
        due=CHICAGO_TUESDAY_10 + timedelta(hours=1),
        target_minutes=60,
        clock_started_at=CHICAGO_TUESDAY_10,
    )
    created = story.created()
    await env.deliver(decision)
    await env.deliver(created)  # the clock has not moved: nothing waited

    [ack] = acknowledgments(env)
    text = text_of(ack)
    assert (
        "A consultant will respond within one business hour, by Tuesday, March 4, 2025 at 11:00 AM CST"
        in text
    )
    assert "outside our office hours" not in text
    row = await acknowledgment_row(env)
    assert row.state == DeliveryState.SENT and row.next_attempt_at == row.created_at

    # Both events again (a re-publish): still one acknowledgment.
    await env.redis.flushdb()
    await env.deliver(created, decision)
    assert len(acknowledgments(env)) == 1


async def test_a_customer_abroad_reads_the_holiday_and_times_in_their_own_zone(env: Env) -> None:
    # Thanksgiving 2026, 10:00 in Chicago (our calendar); the customer's organization is in Berlin.
    berlin = ev.OrganizationRef(
        id=uuid4(), name="Kaffeehaus", support_tier="hourly", sla_signed=True, timezone="Europe/Berlin"
    )
    thanksgiving_10 = datetime(2026, 11, 26, 16, 0, tzinfo=UTC)
    story = TicketStory(org=berlin, created_at=thanksgiving_10)
    decision = triaged(
        story,
        priority="P2",
        due=datetime(2026, 11, 27, 19, 0, tzinfo=UTC),  # Friday 13:00 Chicago
        target_minutes=240,
        clock_started_at=datetime(2026, 11, 27, 15, 0, tzinfo=UTC),  # Friday 09:00 Chicago
        closed_days=(ev.ClosedDayV1(day=datetime(2026, 11, 26).date(), name="Thanksgiving Day"),),
    )
    await env.deliver(decision, story.created())
    [ack] = acknowledgments(env)
    text = " ".join(text_of(ack).split())
    assert "Our office is closed on Thursday, November 26, 2026 (Thanksgiving Day)." in text
    assert "We are back Friday, November 27, 2026 at 4:00 PM CET;" in text
    assert "by Friday, November 27, 2026 at 8:00 PM CET." in text
    assert "outside our office hours" not in text and "CST" not in text.split("Our office hours")[0]


async def test_triage_deciding_within_the_wait_replaces_the_estimate_and_it_is_sent_once(env: Env) -> None:
    story = TicketStory(created_at=GOOD_FRIDAY_16, org=northwind())
    await env.deliver(story.created())
    assert acknowledgments(env) == [], "waiting for triage"
    row = await acknowledgment_row(env)
    assert row.state == DeliveryState.PENDING
    assert row.next_attempt_at == env.clock() + timedelta(seconds=WAIT)
    # The estimate it would send: notifier's office hours know no holiday (Friday counts).
    assert "within four business hours, by Monday, April 6, 2026 at 12:00 PM PDT" in row.text_body
    assert "outside our office hours" not in row.text_body

    env.clock.advance(seconds=0.4)  # triage decides a few hundred milliseconds later
    await env.deliver(
        triaged(
            story,
            priority="P2",
            due=MONDAY_13_VANCOUVER,
            target_minutes=240,
            clock_started_at=MONDAY_09_VANCOUVER,
            timezone="America/Vancouver",
        )
    )
    [ack] = acknowledgments(env)
    text = text_of(ack)
    assert "You reached us outside our office hours." in text
    assert "handled on the next business day, Monday, April 6, 2026 at 9:00 AM PDT" in text
    assert "within four business hours, by Monday, April 6, 2026 at 1:00 PM PDT" in text
    assert "(America/Vancouver)" in text
    html = ack.get_body(("html",))
    assert html is not None and "1:00 PM PDT" in str(html.get_content())
    assert ack["Message-ID"] == row.message_id, "the same mail, its content replaced"
    assert ticket_status_link(text, env) == {"ticket_id": str(story.ticket_id), "email": story.contact_email}
    sent = await acknowledgment_row(env)
    assert (sent.state, sent.attempts, sent.sent_at) == (DeliveryState.SENT, 1, env.clock())

    # The deferred job's time comes (and the sweeper looks): nothing more is sent.
    env.clock.advance(seconds=WAIT + 5)
    await sweep_now(env)
    assert len(acknowledgments(env)) == 1


async def test_without_triage_the_estimate_goes_out_after_the_wait(env: Env) -> None:
    story = TicketStory(org=organization(sla_signed=True))
    await env.deliver(story.created())
    env.clock.advance(seconds=WAIT - 0.1)
    await sweep_now(env)
    assert acknowledgments(env) == []

    env.clock.advance(seconds=0.1)
    await sweep_now(env)
    [ack] = acknowledgments(env)
    assert "within four business hours, by Tuesday, March 4, 2025 at 2:00 PM CST" in text_of(ack)

    # Triage's decision arriving late changes nothing that was sent, and sends nothing.
    env.clock.advance(seconds=10)
    late = triaged(
        story,
        priority="P1",
        due=CHICAGO_TUESDAY_10 + timedelta(hours=1),
        target_minutes=60,
        clock_started_at=CHICAGO_TUESDAY_10,
    )
    await env.deliver(late)
    assert len(acknowledgments(env)) == 1
    row = await acknowledgment_row(env)
    assert "2:00 PM CST" in row.text_body and row.attempts == 1


async def test_a_later_triage_changes_nothing_already_sent(env: Env) -> None:
    story = TicketStory(org=organization(sla_signed=True))
    await env.deliver(story.created())
    env.clock.advance(seconds=0.3)
    first = triaged(
        story,
        priority="P2",
        due=CHICAGO_TUESDAY_10 + timedelta(hours=4),
        target_minutes=240,
        clock_started_at=CHICAGO_TUESDAY_10,
    )
    await env.deliver(first)
    [ack] = acknowledgments(env)
    sent = await acknowledgment_row(env)

    env.clock.advance(minutes=20)
    await env.deliver(
        triaged(
            story,
            priority="P1",
            due=CHICAGO_TUESDAY_10 + timedelta(hours=1),
            target_minutes=60,
            clock_started_at=CHICAGO_TUESDAY_10,
            trigger="inputs_changed",
        )
    )
    env.clock.advance(seconds=WAIT + 5)
    await sweep_now(env)
    [again] = acknowledgments(env)
    assert again["Message-ID"] == ack["Message-ID"]
    after = await acknowledgment_row(env)
    assert (after.text_body, after.attempts, after.sent_at) == (sent.text_body, 1, sent.sent_at)
    # The projection holds the newest decision (for whatever mail comes next).
    async with env.runtime.sessions() as session:
        sla = await repo.get_ticket_sla(session, story.ticket_id)
    assert sla is not None and sla.first_response_target_minutes == 60


async def test_an_older_decision_arriving_last_does_not_replace_the_newer_one(env: Env) -> None:
    story = TicketStory(org=organization(sla_signed=True))
    older = triaged(
        story,
        priority="P2",
        due=CHICAGO_TUESDAY_10 + timedelta(hours=4),
        target_minutes=240,
        clock_started_at=CHICAGO_TUESDAY_10,
        occurred_at=CHICAGO_TUESDAY_10 + timedelta(seconds=1),
    )
    newer = triaged(
        story,
        priority="P1",
        due=CHICAGO_TUESDAY_10 + timedelta(hours=1),
        target_minutes=60,
        clock_started_at=CHICAGO_TUESDAY_10,
        trigger="inputs_changed",
        occurred_at=CHICAGO_TUESDAY_10 + timedelta(seconds=2),
    )
    # Both overtake ticket.created (the newer one first): the projection keeps the newer one.
    await env.deliver(newer)
    await env.deliver(older)
    await env.deliver(story.created())
    [ack] = acknowledgments(env)
    assert "within one business hour, by Tuesday, March 4, 2025 at 11:00 AM CST" in text_of(ack)


async def test_a_paused_clock_keeps_the_estimate_waiting(env: Env) -> None:
    """A decision without a first-response due time (paused: waiting on the customer) is no
    promise to state: the acknowledgment keeps its estimate and its time."""
    story = TicketStory(org=organization(sla_signed=True))
    await env.deliver(story.created())
    await env.deliver(triaged(story, priority="P3", due=None, target_minutes=480, clock_started_at=None))
    assert acknowledgments(env) == []
    env.clock.advance(seconds=WAIT)
    await sweep_now(env)
    [ack] = acknowledgments(env)
    assert "within four business hours" in text_of(ack)


@pytest.mark.parametrize("first", ["created", "triaged"])
async def test_both_events_handled_at_the_same_time_still_send_triages_promise_at_once(
    env: Env, first: str
) -> None:
    """Triage decides within milliseconds: its event and ticket.created are handled by two jobs
    at once. Each handler reads what the other writes; the one that comes second waits for the
    first to commit (else neither would see the other's row: the estimate would wait out the
    delay, with the wrong promise on a holiday)."""
    story = TicketStory(created_at=GOOD_FRIDAY_16, org=northwind())
    created = story.created()
    decision = triaged(
        story,
        priority="P2",
        due=MONDAY_13_VANCOUVER,
        target_minutes=240,
        clock_started_at=MONDAY_09_VANCOUVER,
        timezone="America/Vancouver",
    )
    handler, held, other = (
        (on_ticket_created, created, decision)
        if first == "created"
        else (on_ticket_triaged, decision, created)
    )
    async with env.runtime.sessions() as session:
        async with session.begin():
            await handler(session, env.notifier, held)
            # The other event's job runs meanwhile; give it ample time to finish if it could.
            second = asyncio.ensure_future(env.consumer.consume(other))
            done, _ = await asyncio.wait({second}, timeout=1.0)
            assert not done, "the second handler waits for the first one's commit"
        await second
    await env.run_worker()  # the jobs enqueued by both commits
    [ack] = acknowledgments(env)
    assert "within four business hours, by Monday, April 6, 2026 at 1:00 PM PDT" in text_of(ack)
    assert "next business day" in text_of(ack)


# --- the promise's wording, directly ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("minutes", "words"),
    [
        (60, "one business hour"),
        (240, "four business hours"),
        (480, "eight business hours"),
        (960, "16 business hours"),
        (30, "30 business minutes"),
        (1, "1 business minute"),
        (90, "one business hour and 30 minutes"),
        (121, "two business hours and 1 minute"),
    ],
)
def test_targets_in_words(minutes: int, words: str) -> None:
    assert target_in_words(minutes) == words


@pytest.mark.parametrize(
    ("local_arrival", "after_hours", "next_business_day", "opening"),
    [
        (datetime(2025, 3, 4, 10, 0), False, False, "Tuesday, March 4, 2025 at 10:00 AM CST"),
        (datetime(2025, 3, 4, 7, 30), True, False, "Tuesday, March 4, 2025 at 9:00 AM CST"),
        (datetime(2025, 3, 4, 15, 0), False, False, "Tuesday, March 4, 2025 at 3:00 PM CST"),  # due Wed
        (datetime(2025, 3, 7, 18, 30), True, True, "Monday, March 10, 2025 at 9:00 AM CDT"),
    ],
)
def test_after_hours_and_next_business_day_follow_when_the_clock_starts(
    local_arrival: datetime, after_hours: bool, next_business_day: bool, opening: str
) -> None:
    arrival = local_arrival.replace(tzinfo=ZoneInfo("America/Chicago"))
    promise = office_hours_promise(arrival, OfficeHours(), 4)
    assert promise.source == PromiseSource.OFFICE_HOURS
    context = promise.context()
    assert (context["after_hours"], context["next_business_day"], context["next_opening"]) == (
        after_hours,
        next_business_day,
        opening,
    )


def test_the_estimate_knows_the_public_holidays_and_names_them() -> None:
    # Triage has not decided yet: notifier's own estimate still closes on Thanksgiving.
    hours = Settings(env="test").office_hours()
    arrival = datetime(2026, 11, 25, 18, 0, tzinfo=ZoneInfo("America/Chicago"))  # Wednesday evening
    context = office_hours_promise(arrival, hours, 4, reader_timezone="Europe/Berlin").context()
    assert context["closed_days"] == "Thursday, November 26, 2026 (Thanksgiving Day)"
    assert context["next_opening"] == "Friday, November 27, 2026 at 4:00 PM CET"
    assert context["due_at"] == "Friday, November 27, 2026 at 8:00 PM CET"
    plain = office_hours_promise(arrival, OfficeHours(), 4).context()
    assert plain["closed_days"] == "" and plain["next_opening"].startswith("Thursday, November 26")


ALICE = ev.AgentRef(
    id=UUID("0194f3c2-7a10-7c3e-9d51-2b8e4f6a1c0a"), name="Alice Consultant", email="alice@helpdesk.test"
)


def alice_assigned(story: TicketStory) -> ev.Event:
    """Triage's decision for ``story``: P2, due four business hours after Tuesday 10:00, Alice."""
    return triaged(
        story,
        priority="P2",
        due=CHICAGO_TUESDAY_10 + timedelta(hours=4),
        target_minutes=240,
        clock_started_at=CHICAGO_TUESDAY_10,
        assignee=ALICE,
    )


async def assert_nothing_more_later(env: Env) -> None:
    """Two minutes on (every wait past, the sweeper run): still one mail each."""
    env.clock.advance(seconds=120)
    await sweep_now(env)
    assert len(to(env, "jane@acme.test")) == 1 and len(to(env, "alice@helpdesk.test")) == 1


def to(env: Env, address: str) -> list[EmailMessage]:
    return [m for m in env.mail() if m["To"] == address]


def assert_alice_told_with_triages_due_time(env: Env) -> None:
    [for_alice] = to(env, "alice@helpdesk.test")
    assert "TKT-1" in str(for_alice["Subject"]) and "(P2)" in str(for_alice["Subject"])
    assert "First response due: Tuesday, March 4, 2025 at 2:00 PM CST" in text_of(for_alice)


async def test_an_assignment_applied_within_the_wait_is_told_in_the_acknowledgment(env: Env) -> None:
    """One mail to the customer instead of two a few hundred milliseconds apart: the
    acknowledgment names the consultant ticket_api assigned and links to booking; the
    consultant gets theirs, with triage's due time."""
    story = TicketStory(org=organization(sla_signed=True))
    await env.deliver(agent_event(ALICE.id, name=ALICE.name, email=ALICE.email), story.created())
    env.clock.advance(seconds=0.4)
    await env.deliver(alice_assigned(story))
    assert env.mail() == [], "triage asked for Alice: the acknowledgment waits for ticket_api to assign her"
    await env.deliver(story.assigned(ALICE.id))
    [ack] = to(env, "jane@acme.test")
    text = text_of(ack)
    assert "We have received your request" in str(ack["Subject"])
    assert "Alice Consultant will respond within four business hours" in text
    assert "Alice Consultant is your consultant for this ticket" in text
    [booking] = [word for word in text.split() if word.endswith("/appointment")]
    assert ticket_status_link(booking.removesuffix("/appointment"), env)["email"] == "jane@acme.test"
    assert_alice_told_with_triages_due_time(env)
    kinds = {n.kind: n.state for n in await env.notifications()}
    assert NotificationKind.ASSIGNMENT_CUSTOMER not in kinds
    await assert_nothing_more_later(env)


async def test_a_consultant_ticket_api_refused_is_never_mailed(env: Env) -> None:
    """Triage chose Alice, but ticket_api did not assign her (no longer active there): its
    ticket.updated changes the priority only. Nobody is told of Alice; the acknowledgment goes
    out when its wait ends, with triage's promise and no consultant named."""
    story = TicketStory(org=organization(sla_signed=True))
    await env.deliver(agent_event(ALICE.id, name=ALICE.name, email=ALICE.email), story.created())
    await env.deliver(alice_assigned(story))
    await env.deliver(
        ticket_updated(
            **story.snapshot(priority="P2", updated_at=story.created_at + timedelta(seconds=1)),
            changed={"priority": [None, "P2"]},
        )
    )
    assert env.mail() == []
    env.clock.advance(seconds=WAIT)
    await sweep_now(env)
    [ack] = env.mail()
    assert "A consultant will respond within four business hours" in text_of(ack)
    assert "Alice" not in text_of(ack)
    env.clock.advance(seconds=120)
    await sweep_now(env)
    assert to(env, "alice@helpdesk.test") == [] and len(env.mail()) == 1


async def test_the_assignment_applied_before_triages_event_arrives_waits_for_its_due_time(env: Env) -> None:
    """ticket_api's ticket.updated is handled before triage's decision reaches the notifier:
    the acknowledgment (naming Alice) and Alice's mail wait for triage's due time, and go out
    at once when it comes."""
    story = TicketStory(org=organization(sla_signed=True))
    await env.deliver(agent_event(ALICE.id, name=ALICE.name, email=ALICE.email), story.created())
    await env.deliver(story.assigned(ALICE.id))
    assert env.mail() == [], "both wait for triage's due time"
    env.clock.advance(seconds=0.2)
    await env.deliver(alice_assigned(story))
    [ack] = to(env, "jane@acme.test")
    assert "Alice Consultant will respond within four business hours, by Tuesday" in text_of(ack)
    assert "Alice Consultant is your consultant" in text_of(ack)
    assert_alice_told_with_triages_due_time(env)
    await assert_nothing_more_later(env)


async def test_an_assignment_overtaking_ticket_created_is_told_in_the_acknowledgment(env: Env) -> None:
    """Both triage's decision and ticket_api's assignment reach the notifier before
    ticket.created: the customer's first mail is still the acknowledgment, threaded under
    their own mail, naming Alice (the customer's assignment mail, waiting, is merged into it)."""
    story = TicketStory(org=organization(sla_signed=True))
    created = story.created(source_message_id="<jane-1@acme.test>")
    await env.deliver(agent_event(ALICE.id, name=ALICE.name, email=ALICE.email))
    await env.deliver(alice_assigned(story), story.assigned(ALICE.id))
    assert to(env, "jane@acme.test") == [], "the customer's mail waits for the acknowledgment"
    assert_alice_told_with_triages_due_time(env)
    await env.deliver(created)
    [ack] = to(env, "jane@acme.test")
    assert "We have received your request" in str(ack["Subject"])
    assert ack["In-Reply-To"] == "<jane-1@acme.test>"
    assert "Alice Consultant is your consultant for this ticket" in text_of(ack)
    states = {n.kind: n.state for n in await env.notifications()}
    assert states[NotificationKind.ASSIGNMENT_CUSTOMER] == DeliveryState.MERGED
    await assert_nothing_more_later(env)
