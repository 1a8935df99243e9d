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
from arq.connections import create_pool
from arq.constants import in_progress_key_prefix
from arq.cron import CronJob
from arq.utils import timestamp_ms
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from shared import dead_letters, metrics
from shared.consumer import EventConsumer
from shared.events import Event, Service
from shared.logging import bind_request_id
from shared.queue import (
    HANDLE_EVENT,
    KEEP_RESULT_SECONDS,
    QUEUE_PREFIX,
    deserialize,
    queue_name,
    redis_settings,
    serialize,
)
from shared.settings import ServiceSettings
from shared.transient import is_transient

log = logging.getLogger(__name__)

Context = dict[str, Any]
Hook = Callable[[Context], Awaitable[None]]

# A killed job is re-run only after the longest timeout + 10 s: keep timeouts short.
JOB_TIMEOUT_SECONDS = 30
# An event's effect gets this long; past it the try counts as a transient failure and is retried
# (arq would fail a job that reaches its own timeout for good).
CONSUME_TIMEOUT_SECONDS = JOB_TIMEOUT_SECONDS - 5
# Tries of an event failing on a transient error (database or Redis down or restarting, a peer
# down) before it is given up: backoff 1, 2, 4 … 256 s, then every 5 minutes, about 16 hours in
# all (well within the day a queued job's data lives in Redis). Other errors (a bug, a payload
# that does not validate) are given up after NON_TRANSIENT_TRIES (15 s). Either way the event is
# dead-lettered, alarmed and replayable (shared.dead_letters), never dropped.
MAX_TRIES = 200
NON_TRANSIENT_TRIES = 5
MAX_BACKOFF_SECONDS = 300
MAX_RECONNECT_DELAY_SECONDS = 15.0


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


def reconnect_delay_seconds(failures: int) -> float:
    """Backoff between tries to reach Redis again: 0.5, 1, 2 … seconds, capped at 15."""
    return float(min(0.5 * 2 ** min(max(failures - 1, 0), 10), MAX_RECONNECT_DELAY_SECONDS))


class Worker(arq_worker.Worker):
    """arq's worker, starting each job in one round trip to Redis (:data:`_START_JOB`), and not
    asking about the jobs it is running itself (they stay in the queue until they finish, so
    every poll lists them again); it outlives a Redis outage (arq's own ends the process on the
    first failed poll): it waits for Redis at start and, polling, backs off and polls again. A job
    whose end could not be recorded meanwhile runs again once its in-progress key expires (the
    consumer absorbs the repeat). Everything else (running, retrying, finishing) is arq's."""

    _start_job: AsyncScript | None = None
    _redis_failures: int = 0
    # Set by the entry point (shared.worker_main --metrics-port): Prometheus exposition there.
    metrics_port: int | None = None

    async def main(self) -> None:
        if self.metrics_port:
            metrics.serve_worker_metrics(self.metrics_port)
        while self._pool is None:
            try:
                self._pool = await create_pool(
                    self.redis_settings,
                    job_deserializer=self.job_deserializer,
                    job_serializer=self.job_serializer,
                    default_queue_name=self.queue_name,
                    expires_extra_ms=self.expires_extra_ms,
                )
            except (OSError, RedisError, TimeoutError) as error:
                await self._redis_unavailable(error)
        self._redis_failures = 0
        if self.metrics_port:
            sampler = metrics.sample_worker_forever(
                service=self.queue_name.removeprefix(QUEUE_PREFIX),
                queue=self.queue_name,
                redis=self.pool,
                ctx=self.ctx,
            )
            self.loop.create_task(sampler)
        await super().main()

    async def _poll_iteration(self) -> None:
        try:
            await super()._poll_iteration()
        except Exception as error:
            if not is_transient(error):
                raise
            await self._redis_unavailable(error)
            return
        if self._redis_failures:
            log.info("Redis answers again after %s failed polls", self._redis_failures)
            self._redis_failures = 0

    async def _redis_unavailable(self, error: BaseException) -> None:
        self._redis_failures += 1
        delay = reconnect_delay_seconds(self._redis_failures)
        log.warning("Redis unavailable (%r); trying again in %.1f s", error, delay)
        await asyncio.sleep(delay)

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
            try:
                score = await self._start_job(
                    keys=[in_progress_key_prefix + job_id, self.queue_name],
                    args=[job_id, timestamp_ms(), int(self.in_progress_timeout_s * 1000)],
                )
            except BaseException:  # Redis gone meanwhile: give the slot back, the poll backs off
                self.job_counter -= 1
                self.sem.release()
                raise
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
    return float(min(2 ** min(max(job_try - 1, 0), 20), MAX_BACKOFF_SECONDS))


def tries_allowed(transient: bool) -> int:
    """How many tries an event failing this way gets before it is given up (dead-lettered)."""
    return MAX_TRIES if transient else NON_TRANSIENT_TRIES


async def handle_event(ctx: Context, raw_event: dict[str, Any]) -> str:
    started = time.time()
    job_try: int = ctx.get("job_try", 1)
    consumer: EventConsumer = ctx["consumer"]
    request_id = raw_event.get("request_id")
    with bind_request_id(request_id if isinstance(request_id, str) else None):
        try:
            event = Event.model_validate(raw_event)
            async with asyncio.timeout(CONSUME_TIMEOUT_SECONDS):
                outcome = await consumer.consume(event)
        except Exception as error:
            transient = is_transient(error)
            if job_try < tries_allowed(transient):
                delay = retry_delay_seconds(job_try)
                log.warning(
                    "%s failure on %s (try %s), retry in %ss",
                    "transient" if transient else "unexpected",
                    raw_event.get("type"),
                    job_try,
                    delay,
                    exc_info=True,
                    extra={"event_id": str(raw_event.get("id"))},
                )
                _job_metrics(ctx, raw_event, "retry", started)
                raise Retry(defer=delay) from error
            await give_up(ctx, raw_event, error, job_try)
            _job_metrics(ctx, raw_event, "dead-lettered", started)
            return "dead-lettered"
    enqueued = ctx.get("enqueue_time")
    _job_metrics(ctx, raw_event, outcome.value, started)
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


def _job_metrics(ctx: Context, raw_event: dict[str, Any], outcome: str, started: float) -> None:
    enqueued = ctx.get("enqueue_time")
    metrics.job_finished(
        str(ctx.get("queue", "")),
        str(raw_event.get("type", "unknown")),
        outcome,
        started=started,
        enqueued=enqueued.timestamp() if enqueued else None,
    )


async def give_up(ctx: Context, raw_event: dict[str, Any], error: Exception, tries: int) -> None:
    """Alarm (ERROR ``event.dead_lettered``) and keep the event to be replayed. If even that fails
    (Redis down), the job is retried: the event is never dropped."""
    log.error(
        "%s: %s %s given up after %s tries: %r",
        dead_letters.ALARM,
        raw_event.get("type"),
        raw_event.get("id"),
        tries,
        error,
        exc_info=error,
        extra={"alarm": dead_letters.ALARM, "event_id": str(raw_event.get("id")), "tries": tries},
    )
    try:
        await dead_letters.bury(
            ctx["redis"], queue=ctx["queue"], event=raw_event, error=repr(error)[:2000], tries=tries
        )
    except Exception as bury_error:
        log.warning("could not keep the given-up event; retrying it", exc_info=True)
        raise Retry(defer=retry_delay_seconds(tries)) from bury_error


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
        # Our handle_event gives events up itself (dead-lettered, see give_up); arq must not first.
        "max_tries": MAX_TRIES + 10,
        "ctx": {"queue": queue_name(service)},
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
