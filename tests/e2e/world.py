"""The world the stories happen in: one PostgreSQL database and one var dir for the whole e2e
run, served by one running stack at a time, each started with the clock at a chosen moment.

The stories need two moments: a Tuesday at 10:00 in Chicago that is also the last day of a
month (S1, S3–S8 and the month's billing), and the following Friday at 18:30 (S2 after hours,
a public holiday, and the period close of the month before). Time is never slept through:
"the weekend comes" means stopping the Tuesday stack and starting the Friday one on the same
database (every process agrees on the shifted time; see ``shared.clock``).

``Backstage`` is test plumbing, never a story's evidence: it reads the services' outbox tables
and the queue's job results to know when an event has been consumed everywhere, and re-publishes
an event (a duplicate delivery) for the replay story.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg
from redis import Redis

from deploy.local.stack import Stack, start_stack
from shared.events import ROUTES, EventType
from shared.queue import queue_name
from tests.conftest import pg_url, recreate_database
from tests.e2e.mailbox import Mailbox

CHICAGO = ZoneInfo("America/Chicago")

# Tuesday, March 31, 2026 is the last day of a month; Friday, April 3, 2026 is Good Friday.
MOMENTS: dict[str, datetime] = {
    "tuesday": datetime(2026, 3, 31, 10, 0, tzinfo=CHICAGO),
    "friday": datetime(2026, 4, 3, 18, 30, tzinfo=CHICAGO),
}
ORDER = ("tuesday", "friday")
SERVICES = ("ticket_api", "triage", "notifier", "billing")


class WorldError(RuntimeError):
    pass


@dataclass
class Scene:
    """The stack running at one moment, and what tests reach it through."""

    moment_name: str
    moment: datetime
    stack: Stack
    mailbox: Mailbox
    backstage: Backstage

    @property
    def gateway(self) -> str:
        return self.stack.gateway_url

    @property
    def inbound_port(self) -> int:
        return self.stack.ports.inbound_smtp


class World:
    """Starts and stops the stacks; at most one runs, and moments only move forward."""

    def __init__(self, base_dir: Path) -> None:
        self.database = f"helpdesk_e2e_{os.getpid()}"
        self.database_url = pg_url(self.database)
        self.var_dir = base_dir / "var"
        self.scene: Scene | None = None
        self.boot_seconds: dict[str, float] = {}
        self._context: Any = None
        self._created = False

    # --- lifecycle ------------------------------------------------------------------------
    def enter(self, name: str) -> Scene:
        if self.scene is not None and self.scene.moment_name == name:
            self._check_alive()
            return self.scene
        if self.scene is not None and ORDER.index(name) < ORDER.index(self.scene.moment_name):
            raise WorldError(
                f"time only moves forward: {name} was asked for after {self.scene.moment_name} "
                "(tests/e2e/conftest.py orders the e2e tests by moment)"
            )
        self._stop_stack()
        if not self._created:
            asyncio.run(recreate_database(self.database))
            self._created = True
        moment = MOMENTS[name]
        started = time.monotonic()
        offset = (moment - datetime.now(UTC)).total_seconds()
        env = {f"{service.upper()}_DATABASE_URL": self.database_url for service in SERVICES}
        env.update(
            {
                "HELPDESK_CLOCK_OFFSET_SECONDS": f"{offset:.3f}",
                # The portal's webhook receiver runs on loopback in the test process.
                "NOTIFIER_WEBHOOK_ALLOW_PRIVATE_ADDRESSES": "true",
            }
        )
        self._context = start_stack(env=env, var_dir=self.var_dir)
        stack = self._context.__enter__()
        self.boot_seconds[name] = time.monotonic() - started
        self.scene = Scene(
            moment_name=name,
            moment=moment,
            stack=stack,
            mailbox=Mailbox(stack.mail_dir),
            backstage=Backstage(self.database_url, stack.redis_url),
        )
        return self.scene

    def close(self) -> None:
        self._stop_stack()
        if self._created:
            asyncio.run(recreate_database(self.database, drop_only=True))

    def _stop_stack(self) -> None:
        if self._context is not None:
            context, self._context = self._context, None
            if self.scene is not None:
                self.scene.backstage.close()
            self.scene = None
            context.__exit__(None, None, None)

    def _check_alive(self) -> None:
        assert self.scene is not None
        dead = self.scene.stack.dead_children()
        if dead:
            notes = "\n\n".join(f"{c.name} exited ({c.returncode()}):\n{c.tail()}" for c in dead)
            raise WorldError(f"a process of the stack died:\n{notes}")


@dataclass(frozen=True)
class OutboxEvent:
    service: str
    id: UUID
    type: str
    subject: str
    data: dict[str, Any]


class Backstage:
    """Outbox rows and job results: for waiting until events are consumed, and for replays."""

    def __init__(self, database_url: str, redis_url: str) -> None:
        self.dsn = database_url.replace("postgresql+asyncpg://", "postgresql://")
        self.redis = Redis.from_url(redis_url)

    def close(self) -> None:
        self.redis.close()

    def _query(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        async def run() -> list[asyncpg.Record]:
            connection = await asyncpg.connect(self.dsn)
            try:
                return list(await connection.fetch(sql, *args))
            finally:
                await connection.close()

        return asyncio.run(run())

    def meeting_began(self, appointment_id: str, at: datetime) -> None:
        """Let an appointment's hour come: it starts at ``at`` (a moment's clock stands still,
        and an appointment is completed only once it has begun)."""
        self._query(
            'UPDATE "ticket_api".appointment '
            "SET ends_at = $2::timestamptz + (ends_at - starts_at), starts_at = $2::timestamptz "
            "WHERE id = $1",
            UUID(appointment_id),
            at,
        )

    def events(
        self, service: str, *, type: str | None = None, subject: str | None = None
    ) -> list[OutboxEvent]:
        """Events ``service`` recorded (its outbox), oldest first."""
        rows = self._query(
            f'SELECT id, type, subject, event FROM "{service}".outbox '
            "WHERE ($1::text IS NULL OR type = $1) AND ($2::text IS NULL OR subject = $2) "
            "ORDER BY created_at, id",
            type,
            subject,
        )
        return [
            OutboxEvent(service, row["id"], row["type"], row["subject"], json.loads(row["event"])["data"])
            for row in rows
        ]

    def _result_keys(self, event: OutboxEvent) -> dict[str, str]:
        return {
            subscriber.value: f"arq:result:{event.id}:{queue_name(subscriber)}"
            for subscriber in ROUTES[EventType(event.type)]
        }

    def outcomes(self, event: OutboxEvent) -> dict[str, str | None]:
        """What each subscriber's consumer answered for ``event`` (None: not consumed yet)."""
        answers: dict[str, str | None] = {}
        for subscriber, key in self._result_keys(event).items():
            raw = self.redis.get(key)
            assert raw is None or isinstance(raw, bytes)
            answers[subscriber] = None if raw is None else str(json.loads(raw).get("r"))
        return answers

    def await_consumed(self, events: Iterable[OutboxEvent], timeout: float = 20.0) -> None:
        """Wait until every subscriber has consumed each of ``events``."""
        pending = list(events)
        deadline = time.monotonic() + timeout
        while pending:
            pending = [e for e in pending if None in self.outcomes(e).values()]
            if not pending:
                return
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"not consumed within {timeout} s: {[(e.type, e.subject) for e in pending]}"
                )
            time.sleep(0.05)

    def await_subject(
        self, service: str, subject: str, *, types: Iterable[str] = (), timeout: float = 20.0
    ) -> list[OutboxEvent]:
        """Wait until the events ``service`` recorded about ``subject`` (at least one of each of
        ``types``) are consumed by all their subscribers; returns them."""
        wanted = set(types)
        deadline = time.monotonic() + timeout
        while True:
            found = self.events(service, subject=subject)
            if found and wanted <= {e.type for e in found}:
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"{service} recorded no {sorted(wanted) or 'event'} about {subject}")
            time.sleep(0.05)
        self.await_consumed(found, timeout=max(deadline - time.monotonic(), 1.0))
        return found

    def replay(self, events: Iterable[OutboxEvent], timeout: float = 20.0) -> dict[UUID, dict[str, str]]:
        """Deliver ``events`` again, as a crash before a publish was marked (or a lost result)
        would: forget their job results, mark their outbox rows unpublished, and let each
        service's outbox relay publish them again. Returns each subscriber's answer to the
        second delivery, per event."""
        chosen = list(events)
        for event in chosen:
            self.redis.delete(*self._result_keys(event).values())
        for service in {event.service for event in chosen}:
            ids = [event.id for event in chosen if event.service == service]
            self._query(f'UPDATE "{service}".outbox SET published_at = NULL WHERE id = ANY($1::uuid[])', ids)
        deadline = time.monotonic() + timeout
        while True:
            answers = {event.id: self.outcomes(event) for event in chosen}
            if all(None not in a.values() for a in answers.values()):
                return {i: {k: str(v) for k, v in a.items()} for i, a in answers.items()}
            if time.monotonic() > deadline:
                raise AssertionError(f"the relays did not publish everything again: {answers}")
            time.sleep(0.1)
