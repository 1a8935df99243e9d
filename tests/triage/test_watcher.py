"""The SLA watcher (the cron job itself, with an injected clock) on PostgreSQL and SQLite."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import update

from services.triage.models import SlaTimer
from services.triage.tasks import watch_sla
from shared import events as ev
from tests.triage.conftest import Ticket, Triage, agent_event, chicago

ALICE = UUID(int=1)


async def watch(triage: Triage, at: datetime) -> int:
    ctx: dict[str, Any] = {"runtime": triage.runtime, "clock": lambda: at}
    return await watch_sla(ctx)


async def alerts(triage: Triage) -> list[tuple[str, str]]:
    found = await triage.emitted("sla.warning", "sla.breached")
    return [(e.type, e.data["target"]) for e in found]


async def test_warning_at_80_percent_then_breach_each_once(triage: Triage) -> None:
    await triage.consume(agent_event(ALICE, "Alice"))
    ticket = Ticket()  # Tuesday 10:00, P2: first response due 14:00, warned at 13:12
    await triage.consume(ticket.created())

    assert await watch(triage, chicago(2026, 11, 24, 13, 11)) == 0
    assert await watch(triage, chicago(2026, 11, 24, 13, 12)) == 1
    assert await watch(triage, chicago(2026, 11, 24, 13, 30)) == 0
    assert await alerts(triage) == [("sla.warning", "first_response")]
    (warning,) = await triage.emitted("sla.warning")
    payload = ev.payload_of(warning, ev.SlaWarningV1)
    assert (payload.due_at, payload.share, payload.assignee.name) == (  # type: ignore[union-attr]
        chicago(2026, 11, 24, 14, 0),
        0.8,
        "Alice",
    )

    await watch(triage, chicago(2026, 11, 24, 14, 0))
    await watch(triage, chicago(2026, 11, 24, 15, 0))
    assert await alerts(triage) == [("sla.warning", "first_response"), ("sla.breached", "first_response")]
    (breach,) = await triage.emitted("sla.breached")
    assert ev.payload_of(breach, ev.SlaBreachedV1).escalated_priority == "P1"

    # ticket_api escalates; its update coming back is triage's own change: targets stay.
    await triage.consume(ticket.updated(chicago(2026, 11, 24, 14, 1), priority="P1"))
    assert len(await triage.emitted("ticket.triaged")) == 1
    # The resolution target (P2: 3 business days, due Monday 10:00 after Thanksgiving) in its turn.
    await watch(triage, chicago(2026, 11, 27, 14, 0))
    await watch(triage, chicago(2026, 11, 30, 10, 0))
    assert [a for a in await alerts(triage) if a[1] == "resolution"] == [
        ("sla.warning", "resolution"),
        ("sla.breached", "resolution"),
    ]


async def test_a_watcher_that_was_down_sends_only_the_breach(triage: Triage) -> None:
    await triage.consume(Ticket().created())
    await watch(triage, chicago(2026, 11, 24, 16, 0))
    assert await alerts(triage) == [("sla.breached", "first_response")]


async def test_met_and_paused_timers_raise_no_alerts(triage: Triage) -> None:
    answered, waiting = Ticket(), Ticket(number="TKT-2")
    await triage.consume(answered.created(), answered.message(chicago(2026, 11, 24, 10, 30)))
    await triage.consume(
        waiting.created(), waiting.status_changed("pending_customer", chicago(2026, 11, 24, 10, 5))
    )
    await watch(triage, chicago(2026, 11, 24, 16, 0))
    assert await alerts(triage) == []


async def test_an_alert_is_claimed_once_even_when_watchers_race(triage: Triage) -> None:
    for n in range(5):
        await triage.consume(Ticket(number=f"TKT-{n}").created())
    at = chicago(2026, 11, 24, 13, 30)
    handled = await asyncio.gather(watch(triage, at), watch(triage, at), watch(triage, at))
    assert sum(handled) == 5
    assert len(await alerts(triage)) == 5
    # A watcher working from a stale view (the timers still look unwarned) claims nothing new.
    async with triage.runtime.sessions() as session, session.begin():
        await session.execute(
            update(SlaTimer)
            .where(SlaTimer.target == "first_response")
            .values(warning_sent_at=None, next_alert_at=at)
        )
    assert await watch(triage, at) == 5
    assert len(await alerts(triage)) == 5


async def test_a_ticket_missing_both_targets_is_raised_once(triage: Triage) -> None:
    ticket = Ticket(urgency="medium")  # P3: first response due Wednesday 10:00, resolution later
    await triage.consume(ticket.created())
    # The watcher was down for weeks: both targets are missed at once.
    await watch(triage, chicago(2026, 12, 15, 10, 0))
    breaches = [ev.payload_of(e, ev.SlaBreachedV1) for e in await triage.emitted("sla.breached")]
    assert sorted(b.target for b in breaches) == ["first_response", "resolution"]
    assert sorted((b.priority, b.escalated_priority) for b in breaches) == [("P2", None), ("P3", "P2")]


async def test_a_p1_breach_is_not_an_escalation(triage: Triage) -> None:
    ticket = Ticket(urgency="critical", impact="team")  # P1: first response due 11:00
    await triage.consume(ticket.created())
    await watch(triage, chicago(2026, 11, 24, 11, 30))
    (breach,) = await triage.emitted("sla.breached")
    payload = ev.payload_of(breach, ev.SlaBreachedV1)
    assert (payload.priority, payload.escalated_priority) == ("P1", None)
