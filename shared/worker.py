"""Building a service's arq worker: one queue, JSON jobs, idempotent event handling.

Each service's ``worker.py`` calls :func:`worker_settings` and exposes the result as
``WorkerSettings`` for ``arq services.<name>.worker.WorkerSettings``. The worker also runs the
service's outbox relay, so events left behind by a crash are published again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from arq import Retry
from arq import worker as arq_worker
from arq.constants import in_progress_key_prefix
from arq.cron import CronJob
from arq.utils import timestamp_ms
from redis.commands.core import AsyncScript

from shared.consumer import EventConsumer, is_transient
from shared.events import Event, Service
from shared.logging import bind_request_id
from shared.queue import HANDLE_EVENT, KEEP_RESULT_SECONDS, deserialize, queue_name, redis_settings, serialize
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)

Context = dict[str, Any]
Hook = Callable[[Context], Awaitable[None]]

# A killed job is re-run only after the longest timeout + 10 s: keep timeouts short.
JOB_TIMEOUT_SECONDS = 30
MAX_TRIES = 25
MAX_BACKOFF_SECONDS = 300


# Starts a job unless it is running (its in-progress key exists) or not due (gone from the queue,
# or deferred again meanwhile): arq's own check, atomic in Redis instead of WATCH / EXISTS /
# ZSCORE / MULTI-PSETEX-EXEC, i.e. one round trip instead of four. Returns the job's score, or 0.
_START_JOB = """
if redis.call('exists', KEYS[1]) == 1 then return 0 end
local score = redis.call('zscore', KEYS[2], ARGV[1])
if (not score) or tonumber(score) > tonumber(ARGV[2]) then return 0 end
redis.call('psetex', KEYS[1], ARGV[3], '1')
return score
"""


class Worker(arq_worker.Worker):
    """arq's worker, starting each job in one round trip to Redis (:data:`_START_JOB`), and not
    asking about the jobs it is running itself (they stay in the queue until they finish, so
    every poll lists them again). Everything else (running, retrying, finishing) is arq's."""

    _start_job: AsyncScript | None = None

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        if self._start_job is None:
            self._start_job = self.pool.register_script(_START_JOB)
        for job_id_b in job_ids:
            job_id = job_id_b.decode()
            running = self.tasks.get(job_id)
            if running is not None and not running.done():
                continue
            await self.sem.acquire()
            if self.job_counter >= self.max_jobs:
                self.sem.release()
                return
            self.job_counter += 1
            score = await self._start_job(
                keys=[in_progress_key_prefix + job_id, self.queue_name],
                args=[job_id, timestamp_ms(), int(self.in_progress_timeout_s * 1000)],
            )
            if not score:
                # Running elsewhere, finished, or deferred again by whoever enqueued it.
                self.job_counter -= 1
                self.sem.release()
                continue
            task = self.loop.create_task(self.run_job(job_id, int(float(score))))
            task.add_done_callback(lambda _: self._release_sem_dec_counter_on_complete())
            self.tasks[job_id] = task


def retry_delay_seconds(job_try: int) -> float:
    """Exponential backoff: 1, 2, 4 … seconds, capped at five minutes."""
    return float(min(2 ** max(job_try - 1, 0), MAX_BACKOFF_SECONDS))


async def handle_event(ctx: Context, raw_event: dict[str, Any]) -> str:
    started = time.time()
    event = Event.model_validate(raw_event)
    consumer: EventConsumer = ctx["consumer"]
    with bind_request_id(event.request_id):
        try:
            outcome = await consumer.consume(event)
        except Exception as error:
            if is_transient(error):
                delay = retry_delay_seconds(ctx.get("job_try", 1))
                log.warning("transient failure on %s, retry in %ss", event.type, delay, exc_info=True)
                raise Retry(defer=delay) from error
            raise
    enqueued = ctx.get("enqueue_time")
    log.info(
        "event %s %s (waited %.0f ms, took %.0f ms, try %s)",
        event.type,
        outcome.value,
        (started - enqueued.timestamp()) * 1000 if enqueued else 0.0,
        (time.time() - started) * 1000,
        ctx.get("job_try", 1),
        extra={"event_id": str(event.id)},
    )
    return outcome.value


def worker_settings(
    service: Service,
    settings: ServiceSettings,
    *,
    startup: Hook,
    shutdown: Hook,
    functions: Sequence[Callable[..., Awaitable[Any]]] = (),
    cron_jobs: Sequence[CronJob] = (),
) -> dict[str, Any]:
    """Keyword arguments for ``arq.Worker``. ``startup`` must put an ``EventConsumer`` in ctx["consumer"]."""
    return {
        "functions": [handle_event, *functions],
        "cron_jobs": list(cron_jobs),
        "queue_name": queue_name(service),
        "redis_settings": redis_settings(settings.redis_url),
        "on_startup": startup,
        "on_shutdown": shutdown,
        "job_serializer": serialize,
        "job_deserializer": deserialize,
        "max_jobs": settings.worker_max_jobs,
        "poll_delay": settings.worker_poll_delay_seconds,
        "job_timeout": JOB_TIMEOUT_SECONDS,
        "keep_result": KEEP_RESULT_SECONDS,
        "max_tries": MAX_TRIES,
        "health_check_interval": 15,
    }


def start_background(ctx: Context, name: str, coroutine: Awaitable[None]) -> None:
    """Run ``coroutine`` for the worker's lifetime (e.g. the outbox relay)."""
    ctx.setdefault("background", {})[name] = asyncio.ensure_future(coroutine)


async def stop_background(ctx: Context) -> None:
    for task in ctx.get("background", {}).values():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


assert handle_event.__name__ == HANDLE_EVENT
