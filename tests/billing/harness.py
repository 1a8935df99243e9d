"""Drive billing the way its worker does: events through the idempotent consumer, the crons
called with an explicit ``now``. Events are built as ticket_api builds them, on a test clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import func, select

from services.billing.context import Billing
from services.billing.models import (
    Charge,
    Invoice,
    InvoiceLine,
    Notice,
    TimeEntryState,
    UsageEntry,
    outbox,
    processed_event,
)
from services.billing.period_close import PeriodCloseReport, close_periods
from services.billing.settings import Settings
from services.billing.tasks import build_handlers, settle_due
from shared import events as ev
from shared.consumer import EventConsumer, Outcome
from shared.db import SessionMaker, create_engine, session_maker
from shared.ids import new_id
from tests.fixtures import events as kit
from tests.fixtures.events import (
    BUILDERS,
    contact_ref,
    organization_ref,
    ticket_closed,
    ticket_status_changed,
)

CHICAGO = "America/Chicago"


@dataclass
class Harness:
    url: str
    sessions: SessionMaker
    billing: Billing
    consumer: EventConsumer

    @property
    def dialect(self) -> str:
        return "postgresql" if self.url.startswith("postgresql") else "sqlite"

    async def deliver(self, *events: ev.Event) -> list[Outcome]:
        return [await self.consumer.consume(event) for event in events]

    async def settle(self, now: datetime) -> int:
        return await settle_due(self.sessions, self.billing, now=now)

    async def close_periods(self, now: datetime) -> PeriodCloseReport:
        return await close_periods(self.sessions, self.billing, now=now)

    async def scalar(self, query: Any) -> Any:
        async with self.sessions() as session:
            return await session.scalar(query)

    async def rows(self, query: Any) -> list[Any]:
        async with self.sessions() as session:
            return list((await session.execute(query)).all())

    async def invoices(self, organization_id: UUID | None = None) -> list[Invoice]:
        query = select(Invoice).order_by(Invoice.number)
        if organization_id is not None:
            query = query.where(Invoice.organization_id == organization_id)
        async with self.sessions() as session:
            return list((await session.scalars(query)).all())

    async def lines(self, invoice_id: UUID) -> list[InvoiceLine]:
        async with self.sessions() as session:
            query = (
                select(InvoiceLine).where(InvoiceLine.invoice_id == invoice_id).order_by(InvoiceLine.position)
            )
            return list((await session.scalars(query)).all())

    async def outbox_events(self, event_type: str | None = None) -> list[ev.Event]:
        query = select(outbox.c.event).order_by(outbox.c.created_at, outbox.c.id)
        if event_type is not None:
            query = query.where(outbox.c.type == event_type)
        return [ev.Event.model_validate_json(row.event) for row in await self.rows(query)]

    async def charged(self, organization_id: UUID, kind: str | None = None) -> int:
        query = select(func.coalesce(func.sum(Charge.minutes), 0)).where(
            Charge.organization_id == organization_id
        )
        if kind is not None:
            query = query.where(Charge.kind == kind)
        return int(await self.scalar(query))

    async def snapshot(self) -> dict[str, Any]:
        """Everything a replay must reproduce: balances, invoices with their lines, notices."""
        usage = await self.rows(
            select(UsageEntry.time_entry_id, UsageEntry.billable, func.sum(UsageEntry.minutes))
            .group_by(UsageEntry.time_entry_id, UsageEntry.billable)
            .order_by(UsageEntry.time_entry_id, UsageEntry.billable)
        )
        charges = await self.rows(
            select(
                Charge.ticket_number,
                Charge.time_entry_id,
                Charge.kind,
                Charge.period_key,
                func.sum(Charge.minutes),
            )
            .group_by(Charge.ticket_number, Charge.time_entry_id, Charge.kind, Charge.period_key)
            .order_by(Charge.ticket_number, Charge.time_entry_id, Charge.kind, Charge.period_key)
        )
        invoices = []
        for invoice in await self.invoices():
            lines = [(line.description, line.minutes, line.amount) for line in await self.lines(invoice.id)]
            invoices.append(
                (
                    invoice.number,
                    invoice.ticket_number,
                    invoice.period_key,
                    invoice.subtotal,
                    invoice.tax,
                    invoice.total,
                    lines,
                )
            )
        notices = await self.rows(
            select(Notice.organization_id, Notice.notice, Notice.scope).order_by(Notice.notice)
        )
        return {
            "usage": [tuple(row) for row in usage if row[2] != 0],
            "charges": [tuple(row) for row in charges if row[4] != 0],
            "invoices": invoices,
            # A block notice is keyed by the newest block's id, made afresh in every run.
            "notices": sorted(
                (str(org), notice, "<block>" if notice.startswith("block.") else scope)
                for org, notice, scope in notices
            ),
            "pending": await self.scalar(select(func.count()).where(TimeEntryState.needs_charge)),
        }


@asynccontextmanager
async def open_harness(url: str, **settings: Any) -> AsyncIterator[Harness]:
    engine = create_engine(url, schema="billing", pool_size=12)
    sessions = session_maker(engine)
    config = Settings(database_url=url, env="test", **{"close_settle_delay_seconds": 5, **settings})
    billing = Billing(config)
    consumer = EventConsumer(table=processed_event, sessions=sessions, handlers=build_handlers(billing))
    try:
        yield Harness(url, sessions, billing, consumer)
    finally:
        await engine.dispose()


# --- building events as ticket_api does ---------------------------------------------------------


@dataclass
class Organization:
    id: UUID
    name: str
    tier: str
    timezone: str = CHICAGO

    def ref(self) -> ev.OrganizationRef:
        return organization_ref(
            id=self.id, name=self.name, support_tier=self.tier, sla_signed=True, timezone=self.timezone
        )

    def fields(self) -> dict[str, Any]:
        return {
            "organization_id": self.id,
            "name": self.name,
            "support_tier": self.tier,
            "sla_signed": True,
            "email_domains": [f"{self.name.lower()}.test"],
            "timezone": self.timezone,
        }


@dataclass
class Ticket:
    organization: Organization
    number: str
    id: UUID = field(default_factory=new_id)
    status: str = "open"


@dataclass
class Entry:
    ticket: Ticket
    minutes: int
    started_at: datetime
    description: str = "Work"
    billable: bool = True
    deleted: bool = False
    revision: int = 1
    id: UUID = field(default_factory=new_id)
    agent_id: UUID = field(default_factory=new_id)


@dataclass
class Story:
    """A clock and an event factory: each call advances the clock by a second."""

    now: datetime = field(default_factory=lambda: datetime(2026, 11, 10, 15, 0, tzinfo=UTC))
    next_ticket: int = 1

    def tick(self, seconds: float = 1) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now

    def organization(self, name: str, tier: str, timezone: str = CHICAGO) -> tuple[Organization, ev.Event]:
        organization = Organization(new_id(), name, tier, timezone)
        return organization, kit.organization_created(occurred_at=self.tick(), **organization.fields())

    def organization_updated(self, organization: Organization) -> ev.Event:
        return kit.organization_updated(occurred_at=self.tick(), **organization.fields())

    def ticket(self, organization: Organization) -> Ticket:
        ticket = Ticket(organization, f"TKT-{self.next_ticket}")
        self.next_ticket += 1
        return ticket

    def _entry_event(self, entry: Entry, event_type: ev.EventType) -> ev.Event:
        return BUILDERS[event_type](
            occurred_at=self.tick(),
            time_entry_id=entry.id,
            revision=entry.revision,
            ticket_id=entry.ticket.id,
            ticket_number=entry.ticket.number,
            ticket_status=entry.ticket.status,
            organization_id=entry.ticket.organization.id,
            agent_id=entry.agent_id,
            minutes=entry.minutes,
            billable=entry.billable,
            started_at=entry.started_at,
            description=entry.description,
            source="manual",
            deleted=entry.deleted,
        )

    def log(
        self, ticket: Ticket, minutes: int, description: str = "Work", **fields: Any
    ) -> tuple[Entry, ev.Event]:
        entry = Entry(
            ticket, minutes, started_at=fields.pop("started_at", self.now), description=description, **fields
        )
        return entry, self._entry_event(entry, ev.EventType.TIME_ENTRY_LOGGED)

    def correct(self, entry: Entry, **changes: Any) -> ev.Event:
        for key, value in changes.items():
            setattr(entry, key, value)
        entry.revision += 1
        return self._entry_event(entry, ev.EventType.TIME_ENTRY_UPDATED)

    def delete(self, entry: Entry) -> ev.Event:
        entry.deleted = True
        entry.revision += 1
        return self._entry_event(entry, ev.EventType.TIME_ENTRY_DELETED)

    def _snapshot(self, ticket: Ticket, when: datetime) -> dict[str, Any]:
        return {
            "ticket_id": ticket.id,
            "number": ticket.number,
            "subject": "Printer offline",
            "urgency": "high",
            "impact": None,
            "category": None,
            "channel": "email",
            "status": ticket.status,
            "priority": "P2",
            "assignee_id": None,
            "contact": contact_ref(email=f"jane@{ticket.organization.name.lower()}.test", name="Jane"),
            "organization": ticket.organization.ref(),
            "created_at": when - timedelta(hours=1),
            "updated_at": when,
        }

    def close(self, ticket: Ticket) -> ev.Event:
        ticket.status = "closed"
        closed_at = self.tick()
        return ticket_closed(occurred_at=closed_at, **self._snapshot(ticket, closed_at), closed_at=closed_at)

    def reopen(self, ticket: Ticket) -> ev.Event:
        """ticket_api's reopen: ticket.status_changed (closed → open), which billing hears."""
        before, ticket.status = ticket.status, "open"
        when = self.tick()
        return ticket_status_changed(
            occurred_at=when, **self._snapshot(ticket, when), from_status=before, to_status="open"
        )


def money(text: str) -> Decimal:
    return Decimal(text)
