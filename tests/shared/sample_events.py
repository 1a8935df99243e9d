"""Events for tests that need one, whatever it is about."""

from __future__ import annotations

from uuid import UUID, uuid4

from shared import events as ev


def agent_created(
    agent_id: UUID | None = None,
    *,
    name: str = "Alice Consultant",
    email: str | None = None,
    skills: tuple[str, ...] = ("printers",),
    timezone: str = "America/Chicago",
) -> ev.Event:
    """An ``agent.created`` event (received by triage and notifier); a new agent by default."""
    agent_id = agent_id or uuid4()
    payload = ev.AgentV1(
        agent_id=agent_id,
        email=email or f"agent-{agent_id.hex[:8]}@helpdesk.test",
        name=name,
        skills=list(skills),
        timezone=timezone,
        working_hours={},
        capacity=10,
        active=True,
    )
    return ev.new_event(
        ev.EventType.AGENT_CREATED, payload, producer=ev.Service.TICKET_API, subject=f"agent:{agent_id}"
    )
