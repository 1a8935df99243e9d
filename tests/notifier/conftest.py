"""notifier on real PostgreSQL, Redis and SMTP: events go through the queue and the idempotent
consumer of a burst-mode worker; mail lands in an SMTP server on loopback and is read back as
MIME; webhooks go to an HTTP receiver on loopback."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from redis.asyncio import Redis
from sqlalchemy import select, text

from deploy.local.smtp_sink import running_sink
from services.notifier.context import Notifier
from services.notifier.models import Notification, outbox, processed_event
from services.notifier.runtime import open_notifier
from services.notifier.settings import Settings
from services.notifier.tasks import JOB_FUNCTIONS, handlers
from shared import events as ev
from shared import queue
from shared.consumer import EventConsumer
from shared.runtime import Runtime
from shared.signed_links import TICKET_STATUS, verify
from tests.conftest import truncate_schema
from tests.fixtures.events import (
    agent_created,
    organization_ref,
    ticket_closed,
    ticket_created,
    ticket_message_added,
    ticket_status_changed,
    ticket_updated,
)
from tests.fixtures.workers import drain_with

SECRET = "notifier-test-secret"
NOTIFIER_QUEUE = queue.queue_name(ev.Service.NOTIFIER)


class Clock:
    """The notifier's clock in tests: starts a day ago (so every deferred job is already due
    for arq) and moves only when a test says so."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC) - timedelta(days=1)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Env:
    notifier: Notifier
    runtime: Runtime
    settings: Settings
    redis: Redis
    mail_dir: Path
    clock: Clock
    consumer: EventConsumer = field(init=False)

    def __post_init__(self) -> None:
        self.consumer = EventConsumer(
            table=processed_event,
            sessions=self.runtime.sessions,
            handlers=handlers(self.notifier),
            outbox=self.runtime.outbox,
        )

    async def publish(self, *events: ev.Event) -> None:
        for event in events:
            await queue.publish(self.runtime.redis, event)

    async def run_worker(self, rounds: int = 6) -> None:
        """Run notifier's worker in burst mode until its queue is empty and nothing is in flight."""
        for _ in range(rounds):
            await drain_with(
                ev.Service.NOTIFIER,
                self.settings,
                self.consumer,
                functions=JOB_FUNCTIONS,  # type: ignore[arg-type]
                notifier=self.notifier,
            )
            await self.notifier.dispatcher.drain()
            await self.runtime.outbox.drain()
            if await self.redis.zcard(NOTIFIER_QUEUE) == 0:
                return
        raise AssertionError("notifier's queue did not drain")

    async def deliver(self, *events: ev.Event) -> None:
        await self.publish(*events)
        await self.run_worker()

    def mail(self) -> list[EmailMessage]:
        from deploy.local.smtp_sink import read_messages

        return read_messages(self.mail_dir)

    async def notifications(self) -> list[Notification]:
        async with self.runtime.sessions() as session:
            return list((await session.scalars(select(Notification).order_by(Notification.created_at))).all())

    async def outbox_events(self) -> list[ev.Event]:
        async with self.runtime.sessions() as session:
            rows = await session.execute(select(outbox.c.event).order_by(outbox.c.created_at))
            return [ev.Event.model_validate_json(row.event) for row in rows]


@pytest.fixture
def mail_dir(tmp_path: Path) -> Iterator[tuple[str, int, Path]]:
    directory = tmp_path / "mail"
    with running_sink(directory) as sink:
        yield sink.host, sink.port, directory


def make_settings(
    database_url: str, redis_url: str, smtp: tuple[str, int], tmp_path: Path, **extra: Any
) -> Settings:
    return Settings(
        database_url=database_url,
        redis_url=redis_url,
        var_dir=tmp_path,
        env="test",
        secret_key=SECRET,
        smtp_host=smtp[0],
        smtp_port=smtp[1],
        webhook_allow_private_addresses=True,
        webhook_timeout_seconds=5,
        **extra,
    )


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Settings for the ``env`` fixture; a module overrides this fixture to change them. The
    acknowledgment goes out at once here (no wait for triage's decision, which these tests
    do not send): test_acknowledgment_promise.py covers the wait."""
    return {"ack_wait_for_triage_seconds": 0}


@pytest.fixture
async def env(
    postgres_url: str,
    redis_url: str,
    redis: Redis,
    mail_dir: tuple[str, int, Path],
    tmp_path: Path,
    settings_overrides: dict[str, Any],
) -> AsyncIterator[Env]:
    await truncate_schema(postgres_url, "notifier")
    host, port, directory = mail_dir
    settings = make_settings(postgres_url, redis_url, (host, port), tmp_path, **settings_overrides)
    runtime = await Runtime.open(settings, outbox)
    notifier = open_notifier(settings, runtime, worker=True)
    clock = Clock()
    notifier.clock = clock
    try:
        yield Env(notifier, runtime, settings, redis, directory, clock)
    finally:
        await notifier.close()
        await runtime.close()


# --- events as ticket_api would send them ---------------------------------------------------------


CHICAGO_TUESDAY_10 = datetime(2025, 3, 4, 16, 0, tzinfo=UTC)  # Tuesday 10:00 in Chicago (CST)


def organization(*, sla_signed: bool = False, tier: str = "hourly") -> ev.OrganizationRef:
    return organization_ref(support_tier=tier, sla_signed=sla_signed)


@dataclass
class TicketStory:
    """One ticket's events, built the way ticket_api builds them."""

    ticket_id: UUID = field(default_factory=uuid4)
    number: str = "TKT-1"
    created_at: datetime = CHICAGO_TUESDAY_10
    org: ev.OrganizationRef | None = None
    channel: str = "email"
    assignee_id: UUID | None = None
    status: str = "new"
    contact_email: str = "jane@acme.test"

    def snapshot(self, **overrides: Any) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "ticket_id": self.ticket_id,
            "number": self.number,
            "subject": "Printer offline",
            "urgency": "high",
            "impact": None,
            "category": None,
            "channel": self.channel,
            "status": self.status,
            "priority": None,
            "assignee_id": self.assignee_id,
            "contact": ev.ContactRef(id=uuid4(), email=self.contact_email, name="Jane Doe"),
            "organization": self.org,
            "created_at": self.created_at,
            "updated_at": self.created_at,
        }
        fields.update(overrides)
        return fields

    def created(self, **extra: Any) -> ev.Event:
        return ticket_created(**self.snapshot(), description="It stopped this morning. Urgent!", **extra)

    def assigned(self, agent_id: UUID, *, by_triage: bool = True, priority: str | None = "P2") -> ev.Event:
        """ticket_api's ``ticket.updated`` once it assigned ``agent_id``: applying triage's
        decision as asked (``known_to`` triage), or (``by_triage=False``) a person's choice."""
        previous, self.assignee_id = self.assignee_id, agent_id
        return ticket_updated(
            **self.snapshot(priority=priority, updated_at=self.created_at + timedelta(seconds=1)),
            changed={"assignee_id": [str(previous) if previous else None, str(agent_id)]},
            known_to=(ev.Service.TRIAGE,) if by_triage else (),
        )

    def message(
        self, body: str, *, author: str = "agent", author_id: UUID | None = None, visibility: str = "public"
    ) -> ev.Event:
        return ticket_message_added(
            **self.snapshot(updated_at=self.created_at + timedelta(minutes=5)),
            visibility=visibility,
            author_kind=author,
            author_id=author_id,
            body=body,
        )

    def status_changed(self, from_status: str, to_status: str) -> ev.Event:
        self.status = to_status
        return ticket_status_changed(
            **self.snapshot(updated_at=self.created_at + timedelta(minutes=10)),
            from_status=from_status,
            to_status=to_status,
        )

    def closed(self) -> ev.Event:
        self.status = "closed"
        at = self.created_at + timedelta(hours=2)
        return ticket_closed(**self.snapshot(updated_at=at), closed_at=at)


def agent_event(
    agent_id: UUID, *, name: str = "Alice Consultant", email: str = "alice@helpdesk.test"
) -> ev.Event:
    return agent_created(agent_id, name=name, email=email)


# --- a webhook receiver on loopback ---------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """An HTTP server on 127.0.0.1 in a thread. ``script[path]`` lists the answers to give
    (status, headers), the last one repeated; ``gates[path]`` holds a request until set."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.script: dict[str, list[tuple[int, dict[str, str]]]] = {}
        self.gates: dict[str, threading.Event] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                receiver.received.append(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                gate = receiver.gates.get(self.path)
                if gate is not None:
                    gate.wait(timeout=10)
                answers = receiver.script.get(self.path, [(200, {})])
                status, headers = answers.pop(0) if len(answers) > 1 else answers[0]
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                payload = json.dumps({"ok": status < 300}).encode()
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        for gate in self.gates.values():
            gate.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


async def execute(env: Env, sql: str, **params: Any) -> Any:
    async with env.runtime.sessions() as session, session.begin():
        return await session.execute(text(sql), params)


def ticket_status_link(body: str, env: Env) -> dict[str, str]:
    """What the mail's track-your-ticket link (the same one in every place) is signed for."""
    tokens = set(re.findall(r"http://127\.0\.0\.1:8080/api/v1/ticket-status/([\w-]+\.[\w-]+)", body))
    assert len(tokens) == 1, tokens
    document = verify(tokens.pop(), purpose=TICKET_STATUS, secret=SECRET, now=env.clock())
    assert document["exp"] > (env.clock() + timedelta(days=90)).timestamp(), "works for months"
    return {key: document[key] for key in ("ticket_id", "email")}
