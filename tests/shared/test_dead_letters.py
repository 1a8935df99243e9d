"""An event is given up only after its tries, alarmed and kept; a replay applies it once."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from arq import Retry
from arq.connections import ArqRedis
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from services.ticket_api.db import outbox as ticket_api_outbox
from services.triage.models import processed_event as triage_processed_event
from services.triage.settings import Settings as TriageSettings
from shared import dead_letters
from shared import events as ev
from shared.consumer import EventConsumer, EventHandler
from shared.queue import connect, queue_name
from shared.runtime import Runtime
from shared.transient import TransientError
from shared.worker import MAX_TRIES, NON_TRANSIENT_TRIES, handle_event, retry_delay_seconds, tries_allowed
from tests.fixtures.events import agent_created
from tests.shared.test_outbox import clean, drain_triage_queue, effects, record_effect

__all__ = ["clean"]

QUEUE = queue_name(ev.Service.TRIAGE)


def test_backoff_doubles_up_to_five_minutes_and_tries_are_bounded() -> None:
    assert [retry_delay_seconds(n) for n in (1, 2, 3, 4)] == [1, 2, 4, 8]
    assert retry_delay_seconds(10) == 300 and retry_delay_seconds(10_000) == 300
    assert tries_allowed(transient=True) == MAX_TRIES > tries_allowed(transient=False) == NON_TRANSIENT_TRIES
    total = sum(retry_delay_seconds(n) for n in range(1, MAX_TRIES))
    assert 10 * 3600 < total < 20 * 3600, "hours of outage covered, within the day a job lives in Redis"


async def _try(ctx: dict[str, Any], event: ev.Event, job_try: int) -> str:
    return await handle_event({**ctx, "job_try": job_try}, event.model_dump(mode="json"))


@contextlib.asynccontextmanager
async def job_context(
    database_url: str, redis_url: str, handler: EventHandler
) -> AsyncIterator[dict[str, Any]]:
    """What arq hands handle_event in triage's worker, with ``handler`` for agent.created."""
    runtime = await Runtime.open(
        TriageSettings(database_url=database_url, redis_url=redis_url), ticket_api_outbox
    )
    consumer = EventConsumer(
        table=triage_processed_event, sessions=runtime.sessions, handlers={"agent.created": handler}
    )
    try:
        yield {"consumer": consumer, "redis": runtime.redis, "queue": QUEUE}
    finally:
        await runtime.close()


async def test_a_failing_event_is_retried_then_dead_lettered_alarmed_and_replayable(
    clean: str, redis_url: str, redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    broken = True

    async def handler(session: AsyncSession, event: ev.Event) -> None:
        await record_effect(session, event)
        if broken:
            raise ValueError("a bug in the handler")

    event = agent_created()
    async with job_context(clean, redis_url, handler) as ctx:
        for job_try in range(1, NON_TRANSIENT_TRIES):
            with pytest.raises(Retry):
                await _try(ctx, event, job_try)
        with caplog.at_level(logging.ERROR, logger="shared.worker"):
            assert await _try(ctx, event, NON_TRANSIENT_TRIES) == "dead-lettered"
    alarms = [r for r in caplog.records if getattr(r, "alarm", None) == dead_letters.ALARM]
    assert len(alarms) == 1 and alarms[0].levelno == logging.ERROR
    assert await effects(clean) == [], "every failed try rolled back"
    (letter,) = await _buried(redis_url)
    assert letter.event_id == str(event.id) and letter.tries == NON_TRANSIENT_TRIES
    assert "a bug in the handler" in letter.error

    # Fixed: the replay puts it back on its queue, the worker applies it once.
    broken = False
    pool = await _pool(redis_url)
    try:
        assert await dead_letters.replay(pool, QUEUE) == 1
        assert await dead_letters.buried(pool, QUEUE) == []
    finally:
        await pool.aclose()
    assert await redis.zcard(QUEUE) == 1
    await drain_triage_queue(clean, redis_url, handler=handler)
    assert await effects(clean) == [event.id]


async def test_a_transient_failure_is_retried_far_longer(clean: str, redis_url: str, redis: Redis) -> None:
    async def handler(session: AsyncSession, event: ev.Event) -> None:
        raise TransientError("database restarting")

    event = agent_created()
    async with job_context(clean, redis_url, handler) as ctx:
        for job_try in (1, NON_TRANSIENT_TRIES, MAX_TRIES - 1):
            with pytest.raises(Retry) as retry:
                await _try(ctx, event, job_try)
            assert retry.value.defer_score == retry_delay_seconds(job_try) * 1000
        assert await _try(ctx, event, MAX_TRIES) == "dead-lettered"
    assert [letter.event_id for letter in await _buried(redis_url)] == [str(event.id)]


async def _pool(redis_url: str) -> ArqRedis:
    return await connect(redis_url)


async def _buried(redis_url: str) -> list[dead_letters.DeadLetter]:
    pool = await _pool(redis_url)
    try:
        return await dead_letters.buried(pool, QUEUE)
    finally:
        await pool.aclose()
