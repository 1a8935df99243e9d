"""Triage on a real database: a consumer fed with hand-built events (the contract's payload
models), a clock the test moves, and the events triage recorded in its outbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select

from services.triage.app import create_app
from services.triage.models import outbox, processed_event
from services.triage.settings import Settings
from services.triage.tasks import build_handlers
from shared import events as ev
from shared.consumer import EventConsumer, Outcome
from shared.ids import new_id
from shared.runtime import Runtime
from tests.conftest import sqlite_copy, truncate_schema
from tests.fixtures import events as kit
from tests.fixtures.events import (
    ticket_created,
    ticket_message_added,
    ticket_status_changed,
    ticket_updated,
    time_entry_deleted,
    time_entry_logged,
)

CHICAGO = ZoneInfo("America/Chicago")
OFFICE_HOURS = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}


def chicago(*args: int) -> datetime:
    return datetime(*args, tzinfo=CHICAGO)


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Ticket:
    """A ticket as ticket_api would describe it in its events."""

    ticket_id: UUID = field(default_factory=new_id)
    number: str = "TKT-1"
    subject: str = "Printer offline"
    description: str = "It stopped this morning. Urgent!"
    urgency: str = "high"
    impact: str | None = None
    category: str | None = "printers"
    status: str = "new"
    priority: str | None = None
    assignee_id: UUID | None = None
    organization: ev.OrganizationRef | None = None
    contact_id: UUID = field(default_factory=new_id)
    created_at: datetime = field(default_factory=lambda: chicago(2026, 11, 24, 10, 0))
    updated_at: datetime | None = None

    def snapshot(self, at: datetime) -> dict[str, Any]:
        return {
            "ticket_id": self.ticket_id,
            "number": self.number,
            "subject": self.subject,
            "urgency": self.urgency,
            "impact": self.impact,
            "category": self.category,
            "channel": "email",
            "status": self.status,
            "priority": self.priority,
            "assignee_id": self.assignee_id,
            "contact": ev.ContactRef(id=self.contact_id, email="jane@acme.test", name="Jane"),
            "organization": self.organization,
            "created_at": self.created_at,
            "updated_at": at,
        }

    def created(self) -> ev.Event:
        return ticket_created(
            occurred_at=self.created_at, **self.snapshot(self.created_at), description=self.description
        )

    def updated(self, at: datetime, **changes: Any) -> ev.Event:
        changed = {key: [str(getattr(self, key)), str(value)] for key, value in changes.items()}
        for key, value in changes.items():
            setattr(self, key, value)
        return ticket_updated(occurred_at=at, **self.snapshot(at), changed=changed)

    def status_changed(self, to_status: str, at: datetime) -> ev.Event:
        from_status, self.status = self.status, to_status
        return ticket_status_changed(
            occurred_at=at, **self.snapshot(at), from_status=from_status, to_status=to_status
        )

    def message(self, at: datetime, *, author_kind: str = "agent", visibility: str = "public") -> ev.Event:
        return ticket_message_added(
            occurred_at=at, **self.snapshot(at), visibility=visibility, author_kind=author_kind
        )

    def call_logged(
        self,
        at: datetime,
        agent_id: UUID,
        *,
        source: str = "call",
        logged_at: datetime | None = None,
        entry_id: UUID | None = None,
        deleted: bool = False,
    ) -> ev.Event:
        """A call that started ``at``, logged 20 minutes later (or at ``logged_at``)."""
        build = time_entry_deleted if deleted else time_entry_logged
        return build(
            occurred_at=logged_at or at + timedelta(minutes=20),
            time_entry_id=entry_id or new_id(),
            ticket_id=self.ticket_id,
            ticket_number=self.number,
            ticket_status=self.status,
            organization_id=self.organization.id if self.organization else None,
            agent_id=agent_id,
            started_at=at,
            source=source,
        )


def organization_ref(organization_id: UUID, tier: str = "hourly") -> ev.OrganizationRef:
    return kit.organization_ref(id=organization_id, support_tier=tier)


def organization_event(
    organization_id: UUID,
    tier: str = "hourly",
    *,
    at: datetime | None = None,
    kind: ev.EventType | None = None,
) -> ev.Event:
    build = kit.BUILDERS[kind or ev.EventType.ORGANIZATION_CREATED]
    return build(
        occurred_at=at or chicago(2026, 1, 1, 9, 0),
        organization_id=organization_id,
        support_tier=tier,
        sla_signed=False,
    )


def agent_event(
    agent_id: UUID,
    name: str,
    *,
    skills: tuple[str, ...] = ("printers",),
    hours: dict[str, list[list[str]]] | None = None,
    timezone: str = "America/Chicago",
    capacity: int = 10,
    active: bool = True,
    at: datetime | None = None,
    kind: ev.EventType = ev.EventType.AGENT_CREATED,
) -> ev.Event:
    return kit.BUILDERS[kind](
        occurred_at=at or chicago(2026, 1, 1, 9, 0),
        agent_id=agent_id,
        email=f"{name.lower()}@helpdesk.test",
        name=name,
        skills=list(skills),
        timezone=timezone,
        working_hours=OFFICE_HOURS if hours is None else hours,
        capacity=capacity,
        active=active,
    )


@dataclass
class Triage:
    runtime: Runtime
    consumer: EventConsumer
    clock: Clock
    settings: Settings

    async def consume(self, *events: ev.Event) -> list[Outcome]:
        return [await self.consumer.consume(e) for e in events]

    async def emitted(self, *types: str) -> list[ev.Event]:
        """Events triage recorded in its outbox (of the given types), oldest first."""
        async with self.runtime.sessions() as session:
            rows = await session.execute(select(outbox.c.event).order_by(outbox.c.created_at, outbox.c.id))
            events = [ev.Event.model_validate_json(row.event) for row in rows]
        return [e for e in events if not types or e.type in types]


@pytest.fixture(params=["postgres", "sqlite"])
async def triage_url(
    request: pytest.FixtureRequest, postgres_url: str, sqlite_template: Path, tmp_path: Path
) -> str:
    if request.param == "postgres":
        await truncate_schema(postgres_url, "triage")
        return postgres_url
    return sqlite_copy(sqlite_template, ev.Service.TRIAGE, tmp_path)


@pytest.fixture
async def triage(triage_url: str, redis_url: str, tmp_path: Path) -> AsyncIterator[Triage]:
    settings = Settings(database_url=triage_url, redis_url=redis_url, var_dir=tmp_path, env="test")
    runtime = await Runtime.open(settings, outbox)
    clock = Clock(chicago(2026, 11, 24, 10, 0))
    consumer = EventConsumer(
        table=processed_event, sessions=runtime.sessions, handlers=build_handlers(settings, clock)
    )
    try:
        yield Triage(runtime, consumer, clock, settings)
    finally:
        await runtime.close()


@pytest.fixture
async def client(triage: Triage) -> AsyncIterator[httpx.AsyncClient]:
    """triage's API on the same database and clock as ``triage``."""
    app = create_app(triage.settings, clock=triage.clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://triage.test") as http:
            yield http
        await app.state.runtime.outbox.drain()
