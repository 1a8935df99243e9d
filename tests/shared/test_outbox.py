"""The outbox on real PostgreSQL and Redis: an event committed with its change reaches each
subscriber's consumer exactly once, whatever crashes between commit, publish and consume."""

from __future__ import annotations

import asyncio
import functools
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import pytest
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.ticket_api.db import outbox as ticket_api_outbox
from services.ticket_api.settings import Settings as TicketApiSettings
from services.triage.models import processed_event as triage_processed_event
from services.triage.settings import Settings as TriageSettings
from shared import events as ev
from shared.consumer import EventConsumer
from shared.queue import queue_name, queues_lost
from shared.runtime import Runtime
from shared.transient import TransientError
from shared.uow import UnitOfWork
from tests.conftest import truncate_schema
from tests.fixtures.events import agent_created
from tests.fixtures.workers import drain_with

ROOT = Path(__file__).resolve().parents[2]
TRIAGE_QUEUE = queue_name(ev.Service.TRIAGE)

# Commits an event, then dies before the event loop can run the publish that commit scheduled.
CRASH_AFTER_COMMIT = """
import asyncio, os
from services.ticket_api.db import outbox
from services.ticket_api.settings import Settings
from shared.runtime import Runtime
from shared.uow import UnitOfWork
from tests.fixtures.events import agent_created

async def main():
    runtime = await Runtime.open(Settings(), outbox)
    event = agent_created()
    async with runtime.sessions() as session:
        uow = UnitOfWork(session, runtime.outbox)
        await uow.outbox.record(uow.session, [event])
        await uow.commit()
        os._exit(9)

asyncio.run(main())
"""


def _pg(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


@pytest.fixture
async def clean(postgres_url: str, redis: Redis) -> AsyncIterator[str]:
    await truncate_schema(postgres_url, "ticket_api")
    await truncate_schema(postgres_url, "triage")
    connection = await asyncpg.connect(_pg(postgres_url))
    # Outside the triage schema, so the migration check never sees it.
    await connection.execute("CREATE SCHEMA IF NOT EXISTS test_support")
    await connection.execute("CREATE TABLE IF NOT EXISTS test_support.effect (event_id uuid NOT NULL)")
    await connection.execute("TRUNCATE test_support.effect")
    await connection.close()
    yield postgres_url


@pytest.fixture
async def ticket_api_runtime(clean: str, redis_url: str) -> AsyncIterator[Runtime]:
    runtime = await Runtime.open(
        TicketApiSettings(database_url=clean, redis_url=redis_url), ticket_api_outbox
    )
    yield runtime
    await runtime.close()


async def record_effect(session: AsyncSession, event: ev.Event) -> None:
    await session.execute(text("INSERT INTO test_support.effect (event_id) VALUES (:id)"), {"id": event.id})


async def drain_triage_queue(database_url: str, redis_url: str, handler: Any = record_effect) -> None:
    """Run triage's worker in burst mode with a consumer whose effect is a row per event."""
    settings = TriageSettings(database_url=database_url, redis_url=redis_url)
    runtime = await Runtime.open(settings, ticket_api_outbox)
    consumer = EventConsumer(
        table=triage_processed_event,
        sessions=runtime.sessions,
        handlers={event_type.value: handler for event_type in ev.EventType},
    )
    try:
        await drain_with(ev.Service.TRIAGE, settings, consumer)
    finally:
        await runtime.close()


async def effects(database_url: str) -> list[UUID]:
    connection = await asyncpg.connect(_pg(database_url))
    try:
        return [row["event_id"] for row in await connection.fetch("SELECT event_id FROM test_support.effect")]
    finally:
        await connection.close()


async def test_crash_between_commit_and_publish_loses_nothing_and_duplicates_nothing(
    clean: str, redis_url: str, redis: Redis, ticket_api_runtime: Runtime
) -> None:
    env = {
        **os.environ,
        "TICKET_API_DATABASE_URL": clean,
        "HELPDESK_REDIS_URL": redis_url,
        "PYTHONPATH": str(ROOT),
    }
    child = await asyncio.create_subprocess_exec(sys.executable, "-c", CRASH_AFTER_COMMIT, env=env, cwd=ROOT)
    assert await child.wait() == 9
    assert await redis.zcard(TRIAGE_QUEUE) == 0, "the crash happened before publishing"

    # The relay finds the committed, unpublished event and publishes it.
    assert await ticket_api_runtime.outbox.relay_once(grace_seconds=0) == 1
    assert await redis.zcard(TRIAGE_QUEUE) == 1

    # A relay that dies after publishing but before marking publishes again: same job id, no new job.
    async with ticket_api_runtime.sessions() as session, session.begin():
        await session.execute(text("UPDATE outbox SET published_at = NULL"))
    assert await ticket_api_runtime.outbox.relay_once(grace_seconds=0) == 1
    assert await redis.zcard(TRIAGE_QUEUE) == 1

    await drain_triage_queue(clean, redis_url)
    # Much later, after arq forgot the job, the event is published yet again: a second job runs,
    # and the consumer's processed-event record absorbs it.
    for key in await redis.keys("arq:*"):
        await redis.delete(key)
    async with ticket_api_runtime.sessions() as session, session.begin():
        await session.execute(text("UPDATE outbox SET published_at = NULL"))
    assert await ticket_api_runtime.outbox.relay_once(grace_seconds=0) == 1
    assert await redis.zcard(TRIAGE_QUEUE) == 1
    await drain_triage_queue(clean, redis_url)

    assert len(await effects(clean)) == 1
    assert await redis.zcard(TRIAGE_QUEUE) == 0


async def test_committed_events_are_published_at_once_and_marked(
    clean: str, redis_url: str, redis: Redis, ticket_api_runtime: Runtime
) -> None:
    event = agent_created()
    async with ticket_api_runtime.sessions() as session:
        uow = UnitOfWork(session, ticket_api_runtime.outbox)
        await uow.outbox.record(uow.session, [event])
        await uow.commit()
    await ticket_api_runtime.outbox.drain()

    assert await redis.zcard(TRIAGE_QUEUE) == 1
    assert await redis.exists(f"arq:job:{event.id}:{TRIAGE_QUEUE}")
    assert await ticket_api_runtime.outbox.relay_once(grace_seconds=0) == 0, "already marked published"
    await drain_triage_queue(clean, redis_url)
    assert await effects(clean) == [event.id]


async def test_rolled_back_events_are_never_published(
    clean: str, redis_url: str, redis: Redis, ticket_api_runtime: Runtime
) -> None:
    async with ticket_api_runtime.sessions() as session:
        uow = UnitOfWork(session, ticket_api_runtime.outbox)
        await uow.outbox.record(uow.session, [agent_created()])
        await uow.rollback()
    await ticket_api_runtime.outbox.drain()

    assert await ticket_api_runtime.outbox.relay_once(grace_seconds=0) == 0
    assert await redis.zcard(TRIAGE_QUEUE) == 0


async def test_relay_waits_for_the_grace_period(
    clean: str, redis_url: str, redis: Redis, ticket_api_runtime: Runtime
) -> None:
    async with ticket_api_runtime.sessions() as session, session.begin():
        await ticket_api_runtime.outbox.record(session, [agent_created()])
    assert await ticket_api_runtime.outbox.relay_once(grace_seconds=60) == 0
    assert await ticket_api_runtime.outbox.relay_once(grace_seconds=0) == 1


async def test_concurrent_duplicate_deliveries_apply_once(clean: str, redis_url: str) -> None:
    settings = TriageSettings(database_url=clean, redis_url=redis_url)
    runtime = await Runtime.open(settings, ticket_api_outbox)
    consumer = EventConsumer(
        table=triage_processed_event, sessions=runtime.sessions, handlers={"agent.created": record_effect}
    )
    event = agent_created()
    try:
        outcomes = await asyncio.gather(*(consumer.consume(event) for _ in range(8)))
    finally:
        await runtime.close()
    assert sorted(outcomes) == ["applied"] + ["duplicate"] * 7
    assert await effects(clean) == [event.id]


async def test_a_failed_effect_is_retried_and_then_applied_once(
    clean: str, redis_url: str, redis: Redis, ticket_api_runtime: Runtime
) -> None:
    attempts = []

    async def flaky(session: AsyncSession, event: ev.Event) -> None:
        attempts.append(event.id)
        await record_effect(session, event)
        if len(attempts) == 1:
            raise TransientError("peer down")

    event = agent_created()
    async with ticket_api_runtime.sessions() as session:
        uow = UnitOfWork(session, ticket_api_runtime.outbox)
        await uow.outbox.record(uow.session, [event])
        await uow.commit()
    await ticket_api_runtime.outbox.drain()
    # Burst mode waits for the deferred retry (about a second) before it stops.
    await drain_triage_queue(clean, redis_url, handler=flaky)
    # The first attempt rolled back its effect together with its processed-event row.
    assert attempts == [event.id, event.id]
    assert await effects(clean) == [event.id]


async def test_concurrent_commits_are_all_published_and_marked_in_batches(
    clean: str, redis_url: str, redis: Redis, ticket_api_runtime: Runtime
) -> None:
    marks: list[int] = []
    original = ticket_api_runtime.outbox._mark_published

    async def counting(ids: list[UUID]) -> None:
        marks.append(len(ids))
        await original(ids)

    ticket_api_runtime.outbox._mark_published = counting  # type: ignore[method-assign]

    async def one() -> None:
        async with ticket_api_runtime.sessions() as session:
            uow = UnitOfWork(session, ticket_api_runtime.outbox)
            await uow.outbox.record(uow.session, [agent_created()])
            await uow.commit()

    await asyncio.gather(*(one() for _ in range(40)))
    await ticket_api_runtime.outbox.drain()

    assert await redis.zcard(TRIAGE_QUEUE) == 40
    assert sum(marks) == 40
    assert len(marks) < 40, "concurrent requests' events are marked together"
    assert await ticket_api_runtime.outbox.relay_once(grace_seconds=0) == 0, "every event is marked"


async def test_redis_losing_its_queues_loses_no_event(
    clean: str, redis_url: str, redis: Redis, ticket_api_runtime: Runtime
) -> None:
    """Published events whose jobs were still queued when Redis lost its data (a restart without
    its file, SHUTDOWN NOSAVE, a flush) are published again by the relay, and applied once."""
    lost = functools.partial(queues_lost, ticket_api_runtime.redis, ev.Service.TICKET_API)
    assert await lost(), "the first relay of all sets the marker"
    assert not await lost(), "then Redis has lost nothing"
    events = [agent_created() for _ in range(3)]
    async with ticket_api_runtime.sessions() as session:
        uow = UnitOfWork(session, ticket_api_runtime.outbox)
        for event in events:
            await uow.outbox.record(uow.session, [event])
        await uow.commit()
    await ticket_api_runtime.outbox.drain()
    assert await redis.zcard(TRIAGE_QUEUE) == 3
    assert await ticket_api_runtime.outbox.relay_once(grace_seconds=0) == 0, "all marked published"

    await redis.flushdb()
    relay = asyncio.ensure_future(
        ticket_api_runtime.outbox.run_relay(
            interval_seconds=0.05, grace_seconds=0, queues_lost=lost, replay_window_seconds=600
        )
    )
    try:
        for _ in range(100):
            if await redis.zcard(TRIAGE_QUEUE) == 3:
                break
            await asyncio.sleep(0.05)
    finally:
        relay.cancel()
        await asyncio.gather(relay, return_exceptions=True)
    assert await redis.zcard(TRIAGE_QUEUE) == 3
    await drain_triage_queue(clean, redis_url)
    assert sorted(await effects(clean)) == sorted(event.id for event in events)
