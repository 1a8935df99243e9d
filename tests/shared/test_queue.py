"""Publishing an event: one job per subscribing service, in one round trip, never twice."""

from __future__ import annotations

from arq.jobs import Job
from redis.asyncio import Redis

from shared import events as ev
from shared import queue
from shared.ids import new_id
from tests.fixtures.events import agent_created


async def test_an_event_becomes_one_arq_job_per_subscriber_and_a_second_publish_none(
    redis_url: str, redis: Redis
) -> None:
    pool = await queue.connect(redis_url)
    try:
        event = agent_created()
        subscribers = ev.subscribers(event.type)
        assert len(subscribers) == 2
        assert await queue.publish(pool, event) == 2
        assert await queue.publish(pool, event) == 0, "the same job ids are still queued"
        for service in subscribers:
            name = queue.queue_name(service)
            job_id = queue.job_id(event, name)
            assert await redis.zscore(name, job_id) is not None
            info = await Job(job_id, pool, _queue_name=name, _deserializer=queue.deserialize).info()
            assert info is not None and info.function == queue.HANDLE_EVENT
            assert ev.Event.model_validate(info.args[0]) == event
            assert info.job_try is None
    finally:
        await pool.aclose()


async def test_a_kept_result_still_refuses_the_job_and_a_flushed_script_cache_is_survived(
    redis_url: str, redis: Redis
) -> None:
    pool = await queue.connect(redis_url)
    try:
        event = agent_created()
        first, second = (queue.queue_name(s) for s in ev.subscribers(event.type))
        await redis.set(f"arq:result:{queue.job_id(event, first)}", b"done")
        await redis.script_flush()
        assert await queue.publish(pool, event) == 1, "only the subscriber without a result gets a job"
        assert await redis.zscore(first, queue.job_id(event, first)) is None
        assert await redis.zscore(second, queue.job_id(event, second)) is not None
    finally:
        await pool.aclose()


async def test_an_event_nobody_consumes_costs_nothing(redis_url: str) -> None:
    pool = await queue.connect(redis_url)
    try:
        event = ev.Event(
            id=new_id(),
            type="something.nobody.reads",
            occurred_at=agent_created().occurred_at,
            producer=ev.Service.TICKET_API,
            subject="x",
            data={},
        )
        assert await queue.publish(pool, event) == 0
    finally:
        await pool.aclose()
