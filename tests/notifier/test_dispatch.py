"""Deferred jobs wait the time left on the service's clock, in real time: a shifted clock
(whole-stack tests start every process with HELPDESK_CLOCK_OFFSET_SECONDS) must neither make
a retry wait months nor break the enqueue."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from arq.connections import ArqRedis
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from services.notifier.dispatch import DELIVER_WEBHOOK, SEND_EMAIL, Dispatcher, Job
from shared import clock, queue
from shared.events import Service

NOTIFIER_QUEUE = queue.queue_name(Service.NOTIFIER)
EIGHT_MONTHS = 240 * 24 * 3600


def worker_dispatcher(pool: ArqRedis) -> tuple[Dispatcher, list[str]]:
    """A worker's dispatcher whose jobs run here only record their ids."""
    ran: list[str] = []

    async def run_here(job: Job) -> str:
        ran.append(job.job_id)
        return "sent"

    return Dispatcher(pool, run_here=run_here), ran


@pytest.mark.parametrize("offset", [-EIGHT_MONTHS, 0, EIGHT_MONTHS])
async def test_a_deferred_job_waits_the_time_left_whatever_the_clock_offset(
    offset: int, redis_url: str, redis: Redis
) -> None:
    pool = await queue.connect(redis_url)
    dispatcher = Dispatcher(pool)
    clock.set_offset(offset)
    try:
        retry = Job(DELIVER_WEBHOOK, "delivery-1", 1, defer_until=clock.utcnow() + timedelta(seconds=30))
        overdue = Job(SEND_EMAIL, "notification-1", 0, defer_until=clock.utcnow() - timedelta(minutes=5))
        now_ms = time.time() * 1000
        assert await dispatcher.enqueue([retry, overdue]) == 2
        retry_at = await redis.zscore(NOTIFIER_QUEUE, retry.job_id)
        overdue_at = await redis.zscore(NOTIFIER_QUEUE, overdue.job_id)
        assert retry_at is not None and overdue_at is not None
        assert 29_000 <= retry_at - now_ms <= 31_000, "the retry waits its 30 seconds of real time"
        assert overdue_at - now_ms <= 1_000, "a job already due runs at once"
    finally:
        clock.set_offset(0)
        await pool.aclose()


async def test_a_deferred_row_made_due_early_gets_a_job_of_its_own(redis_url: str, redis: Redis) -> None:
    """An acknowledgment waiting for triage (its job deferred) that triage makes due now: the
    queue refuses a second job of the same id while it holds the deferred one, so the early
    send is a variant of it (whichever runs first claims the row)."""
    pool = await queue.connect(redis_url)
    dispatcher = Dispatcher(pool)
    try:
        waiting = Job(SEND_EMAIL, "notification-2", 0, defer_until=clock.utcnow() + timedelta(seconds=3))
        assert await dispatcher.enqueue([waiting]) == 1
        assert await dispatcher.enqueue([Job(SEND_EMAIL, "notification-2", 0)]) == 0, "same id: refused"
        early = Job(SEND_EMAIL, "notification-2", 0, variant="now")
        assert early.job_id == "send_notification:notification-2:0:now"
        now_ms = time.time() * 1000
        assert await dispatcher.enqueue([early]) == 1
        early_at = await redis.zscore(NOTIFIER_QUEUE, early.job_id)
        assert early_at is not None and early_at - now_ms <= 1_000
    finally:
        await pool.aclose()


async def test_a_job_run_here_takes_the_deferred_job_it_replaces_off_the_queue(
    redis_url: str, redis: Redis
) -> None:
    """In the worker, the early send runs in the process after the commit, and the deferred
    job waiting for the same row leaves the queue instead of running later for nothing."""
    pool = await queue.connect(redis_url)
    dispatcher, ran = worker_dispatcher(pool)
    try:
        waiting = Job(SEND_EMAIL, "notification-3", 0, defer_until=clock.utcnow() + timedelta(seconds=3))
        assert await dispatcher.enqueue([waiting]) == 1
        engine = create_async_engine("sqlite+aiosqlite://")
        async with AsyncSession(engine) as session:
            await session.execute(text("SELECT 1"))
            early = Job(SEND_EMAIL, "notification-3", 0, variant="now", withdraws=waiting.job_id)
            dispatcher.after_commit(session, early)
            assert ran == [] and await redis.zcard(NOTIFIER_QUEUE) == 1, "nothing happens before the commit"
            await session.commit()
        await dispatcher.drain()
        assert ran == [early.job_id]
        assert await redis.zcard(NOTIFIER_QUEUE) == 0
        assert await redis.exists(f"arq:job:{waiting.job_id}") == 0
        await engine.dispose()
    finally:
        await pool.aclose()


async def test_webhook_deliveries_stay_jobs_even_in_the_worker(redis_url: str, redis: Redis) -> None:
    """A slow endpoint holds a job slot for its timeout: never one of the slots mail goes out by."""
    pool = await queue.connect(redis_url)
    dispatcher, ran = worker_dispatcher(pool)
    engine = create_async_engine("sqlite+aiosqlite://")
    try:
        async with AsyncSession(engine) as session:
            await session.execute(text("SELECT 1"))
            dispatcher.after_commit(session, Job(DELIVER_WEBHOOK, "delivery-9", 0))
            dispatcher.after_commit(session, Job(SEND_EMAIL, "notification-9", 0))
            await session.commit()
        await dispatcher.drain()
        assert ran == ["send_notification:notification-9:0"]
        assert await redis.zscore(NOTIFIER_QUEUE, "deliver_webhook:delivery-9:0") is not None
    finally:
        await engine.dispose()
        await pool.aclose()
