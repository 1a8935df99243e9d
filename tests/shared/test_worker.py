"""shared.worker.Worker: arq's worker with a job start of one round trip to Redis. Whatever
started a job, each job runs once; a job deferred again, or running already, is left alone."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from arq.connections import ArqRedis, RedisSettings
from arq.constants import health_check_key_suffix, in_progress_key_prefix
from arq.worker import func
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from shared.events import Service
from shared.queue import queue_name
from shared.worker import Worker, reconnect_delay_seconds
from tests.fixtures.workers import burst_worker
from tests.servers import RedisServer

ROOT = Path(__file__).resolve().parents[2]
QUEUE = "test:start_jobs"


async def record(ctx: dict[str, Any], n: int) -> None:
    ctx["runs"].append((ctx["name"], n))
    await asyncio.sleep(0.01)


def worker(redis_url: str, name: str, runs: list[tuple[str, int]], **options: Any) -> Worker:
    return burst_worker(
        functions=[func(record, name="record")],
        queue_name=QUEUE,
        redis_settings=RedisSettings.from_dsn(redis_url),
        ctx={"name": name, "runs": runs},
        **options,
    )


async def enqueue(redis_url: str, count: int, **options: Any) -> ArqRedis:
    pool = ArqRedis.from_url(redis_url)
    for n in range(count):
        assert await pool.enqueue_job("record", n, _job_id=f"job-{n}", _queue_name=QUEUE, **options)
    return pool


async def test_two_workers_on_one_queue_run_each_job_once(redis_url: str, redis: Redis) -> None:
    pool = await enqueue(redis_url, 200)
    runs: list[tuple[str, int]] = []
    first, second = worker(redis_url, "first", runs), worker(redis_url, "second", runs)
    try:
        await asyncio.gather(first.main(), second.main())
    finally:
        await first.close()
        await second.close()
        await pool.aclose()
    assert sorted(n for _, n in runs) == list(range(200))
    assert {name for name, _ in runs} == {"first", "second"}, "both took jobs: they raced for each"
    assert await redis.zcard(QUEUE) == 0


async def test_a_job_running_elsewhere_or_deferred_again_is_not_started(redis_url: str, redis: Redis) -> None:
    pool = await enqueue(redis_url, 2)
    await redis.set(in_progress_key_prefix + "job-0", b"1", px=60_000)  # another worker runs it
    # A job the poll listed as due but whose enqueuer deferred it again since.
    runs: list[tuple[str, int]] = []
    late = worker(redis_url, "late", runs, redis_pool=pool)
    await redis.zadd(QUEUE, {"job-1": 10**13})
    try:
        await late.start_jobs([b"job-0", b"job-1"])
        await asyncio.sleep(0.1)
    finally:
        await pool.aclose()
    assert runs == []
    assert late.job_counter == 0, "slots given back"
    assert await redis.zscore(QUEUE, "job-0") is not None, "left for the worker that runs it"


async def test_a_job_this_worker_runs_is_not_asked_about_again(redis_url: str, redis: Redis) -> None:
    pool = await enqueue(redis_url, 1)
    runs: list[tuple[str, int]] = []
    busy = worker(redis_url, "busy", runs, redis_pool=pool)
    try:
        await busy.start_jobs([b"job-0"])
        assert "job-0" in busy.tasks
        calls = await redis.info("commandstats")
        before = calls.get("cmdstat_evalsha", {}).get("calls", 0) + calls.get("cmdstat_eval", {}).get(
            "calls", 0
        )
        await busy.start_jobs([b"job-0"])  # the next poll lists it again while it runs
        calls = await redis.info("commandstats")
        after = calls.get("cmdstat_evalsha", {}).get("calls", 0) + calls.get("cmdstat_eval", {}).get(
            "calls", 0
        )
        await asyncio.gather(*busy.tasks.values())
    finally:
        await pool.aclose()
    assert after == before
    assert runs == [("busy", 0)]


async def test_the_entry_points_check_answers_from_the_workers_health_key(
    redis_url: str, redis: Redis
) -> None:
    """``python -m shared.worker_main --check …`` (the containers' health check): 1 while no
    worker has written its health key, 0 once one has."""

    async def check() -> int:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "shared.worker_main",
            "--check",
            "services.billing.worker.WorkerSettings",
            env={**os.environ, "HELPDESK_REDIS_URL": redis_url, "PYTHONPATH": str(ROOT)},
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        return await process.wait()

    assert await check() == 1
    await redis.set(queue_name(Service.BILLING) + health_check_key_suffix, b"j_complete=0 ...", ex=10)
    assert await check() == 0


def test_reconnect_backoff_doubles_up_to_fifteen_seconds() -> None:
    assert [reconnect_delay_seconds(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]
    assert reconnect_delay_seconds(50) == 15.0


async def test_a_worker_outlives_a_redis_restart_and_takes_jobs_again() -> None:
    """arq's own worker ends on the first poll that fails; ours waits and polls again."""
    server = RedisServer()
    server.start()
    runs: list[tuple[str, int]] = []
    survivor = Worker(
        functions=[func(record, name="record")],
        queue_name=QUEUE,
        redis_settings=RedisSettings.from_dsn(server.url),
        handle_signals=False,
        poll_delay=0.01,
        ctx={"name": "survivor", "runs": runs},
    )
    running = asyncio.ensure_future(survivor.main())
    try:
        pool = await enqueue(server.url, 1)
        await pool.aclose()
        await _until(lambda: len(runs) == 1)
        await asyncio.to_thread(server.stop)
        await asyncio.sleep(2)
        assert not running.done(), "the worker keeps going while Redis is down"
        await asyncio.to_thread(server.start)
        pool = ArqRedis.from_url(server.url)
        assert await pool.enqueue_job("record", 1, _job_id="job-after", _queue_name=QUEUE)
        await pool.aclose()
        await _until(lambda: len(runs) == 2)
        # Let the job's own bookkeeping finish: closing cancels jobs still running, and a
        # cancelled one would end close() before it closes the pool.
        await _until(lambda: all(task.done() for task in survivor.tasks.values()))
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await survivor.close()
        await asyncio.to_thread(server.destroy)
    assert runs == [("survivor", 0), ("survivor", 1)]


async def _until(condition: Callable[[], bool], within: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_a_start_that_fails_on_redis_gives_its_slot_back() -> None:
    """Else every poll failing that way during an outage would leak a slot, until none is left."""
    server = RedisServer()
    server.start()
    pool = ArqRedis.from_url(server.url)
    runs: list[tuple[str, int]] = []
    starved = worker(server.url, "starved", runs, redis_pool=pool, max_jobs=2)
    try:
        await asyncio.to_thread(server.stop)
        for _ in range(2):  # as many as there are slots
            with pytest.raises(RedisConnectionError):
                await starved.start_jobs([b"job-0"])
        assert starved.job_counter == 0
        assert not starved.sem.locked(), "both slots are free"
    finally:
        await pool.aclose()
        server.destroy()
    assert runs == []
