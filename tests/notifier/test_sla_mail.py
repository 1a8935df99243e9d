"""SLA warning and breach mails: time left to the minute, the priority the ticket has now,
"escalated" only when it was, and every consultant reading due times in their own zone."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from uuid import uuid4

import pytest

from services.notifier.handlers.sla import time_left
from shared import events as ev
from tests.fixtures.events import BUILDERS, agent_created, contact_ref
from tests.notifier.conftest import Env, TicketStory, organization

DUE = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)  # 14:00 in Chicago, 21:00 in Berlin


def text_of(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return " ".join(str(body.get_content()).split())


@pytest.mark.parametrize(
    ("target", "share", "left"), [(60, 0.8, "12 min"), (240, 0.8, "48 min"), (480, 0.8, "1 h 36 min")]
)
def test_time_left_is_rounded_to_the_nearest_minute(target: int, share: float, left: str) -> None:
    assert time_left(target, share) == left


def alert(kind: ev.EventType, story: TicketStory, agent: ev.AgentRef, **extra: object) -> ev.Event:
    return BUILDERS[kind](
        ticket_id=story.ticket_id,
        number=story.number,
        due_at=DUE,
        assignee=agent,
        contact=contact_ref(email=story.contact_email, name="Jane"),
        organization=story.org,
        **extra,
    )


async def test_a_consultant_abroad_reads_the_warning_in_their_zone(env: Env) -> None:
    hired = agent_created(name="Greta", email="greta@helpdesk.test", timezone="Europe/Berlin")
    greta = ev.AgentRef(id=hired.data["agent_id"], name="Greta", email="greta@helpdesk.test")
    story = TicketStory(org=organization())  # a Chicago customer
    await env.deliver(hired)  # notifier knows her zone before the warning comes
    await env.deliver(alert(ev.EventType.SLA_WARNING, story, greta, share=0.8, priority="P1"))
    [mail] = [m for m in env.mail() if "SLA warning" in str(m["Subject"])]
    text = text_of(mail)
    assert "is due Tuesday, November 24, 2026 at 9:00 PM CET (12 min left)" in text
    assert "CST" not in text


async def test_a_breach_mail_shows_the_new_priority_and_says_escalated_only_when_it_was(env: Env) -> None:
    alice = ev.AgentRef(id=uuid4(), name="Alice", email="alice@helpdesk.test")
    raised, top = TicketStory(org=organization()), TicketStory(org=organization(), number="TKT-2")
    await env.deliver(
        alert(ev.EventType.SLA_BREACHED, raised, alice, priority="P3", escalated_priority="P2"),
        alert(ev.EventType.SLA_BREACHED, top, alice, priority="P1", escalated_priority=None),
    )
    to_alice = {
        str(m["Subject"]).split("]")[0]: text_of(m) for m in env.mail() if m["To"] == "alice@helpdesk.test"
    }
    assert "priority P2, was due Tuesday, November 24, 2026 at 2:00 PM CST" in to_alice["[TKT-1"]
    assert "it has been escalated from P3 to P2" in to_alice["[TKT-1"]
    assert "priority P1," in to_alice["[TKT-2"] and "escalated" not in to_alice["[TKT-2"]
