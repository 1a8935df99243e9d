"""Our one door to the job queue (arq on Redis), so a successor could replace arq here alone.

One queue per service. Publishing an event enqueues one ``handle_event`` job per subscribing
service with the deterministic id ``<event id>:<queue>``: publishing the same event twice
while the first job (or its result) is still kept creates no second job. Jobs are JSON.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

import orjson
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.constants import expires_extra_ms, job_key_prefix, result_key_prefix
from arq.jobs import serialize_job
from arq.utils import timestamp_ms
from arq.worker import Function, func
from redis.exceptions import NoScriptError, RedisError

from shared.events import Event, Service, recipients

__all__ = ["Event", "Queue", "connect", "enqueue", "job_function", "publish", "queue_name", "withdraw"]

# The connection every enqueue goes through (for type hints: callers never import arq).
Queue = ArqRedis

log = logging.getLogger(__name__)

HANDLE_EVENT = "handle_event"
QUEUE_PREFIX = "helpdesk:queue:"
# Results are kept this long; while kept, a re-published event is refused as a duplicate job
# (after that, the consumer's processed_event absorbs it). arq keeps each job's arguments with its
# result, so this is also how many minutes of traffic Redis holds: the relay re-publishes after
# seconds, five minutes is ample, an hour at 100 tickets/s would be gigabytes.
KEEP_RESULT_SECONDS = 300


def queue_name(service: Service) -> str:
    return f"{QUEUE_PREFIX}{service.value}"


# Set (without expiry) by the first relay of each service that sees Redis: gone means Redis lost
# its data (restarted without its append-only file, flushed), and with it queued jobs.
QUEUES_ALIVE_PREFIX = "helpdesk:queues-alive:"


async def queues_lost(redis: ArqRedis, service: Service) -> bool:
    """True once each time this service's marker is missing (it is set again here): the jobs of
    recently published events may be gone. Also true on the very first start."""
    return bool(await redis.set(f"{QUEUES_ALIVE_PREFIX}{service.value}", "1", nx=True))


def job_id(event: Event, queue: str) -> str:
    return f"{event.id}:{queue}"


def serialize(data: dict[str, Any]) -> bytes:
    return orjson.dumps(data, default=str)


def deserialize(raw: bytes) -> dict[str, Any]:
    value = orjson.loads(raw)
    if not isinstance(value, dict):
        raise ValueError("a job must be a JSON object")
    return value


def redis_settings(redis_url: str) -> RedisSettings:
    settings = RedisSettings.from_dsn(redis_url)
    settings.conn_timeout = 2
    settings.conn_retries = 3
    return settings


async def connect(redis_url: str, *, wait: bool = True) -> ArqRedis:
    """A Redis pool that enqueues JSON jobs. With ``wait`` it fails unless Redis answers (after a
    few tries); without, an API process starts anyway and connects on first use (meanwhile its
    requests that need Redis answer 503)."""
    settings = redis_settings(redis_url)
    try:
        return await create_pool(settings, job_serializer=serialize, job_deserializer=deserialize)
    except (OSError, RedisError, TimeoutError):
        if wait:
            raise
    log.warning("Redis does not answer at %s:%s; connecting on first use", settings.host, settings.port)
    pool: ArqRedis = ArqRedis.from_url(redis_url, socket_connect_timeout=settings.conn_timeout)
    pool.job_serializer, pool.job_deserializer = serialize, deserialize
    return pool


# What arq's enqueue_job does (create the job unless its id is queued or its result kept), for
# every subscriber of an event at once: one round trip instead of three per subscriber.
# KEYS: per job, its job key, result key and queue; ARGV: time to live (ms), score (ms), then
# per job its id and serialized job.
_ENQUEUE_ALL = """
local created = 0
for i = 0, #KEYS / 3 - 1 do
    local job_key, result_key, queue = KEYS[i * 3 + 1], KEYS[i * 3 + 2], KEYS[i * 3 + 3]
    if redis.call('exists', job_key, result_key) == 0 then
        redis.call('psetex', job_key, ARGV[1], ARGV[3 + i * 2 + 1])
        redis.call('zadd', queue, ARGV[2], ARGV[3 + i * 2])
        created = created + 1
    end
end
return created
"""
_ENQUEUE_ALL_SHA = hashlib.sha1(_ENQUEUE_ALL.encode()).hexdigest()


async def publish(redis: ArqRedis, event: Event) -> int:
    """Enqueue ``event`` for each subscriber that does not know it already; returns how many
    new jobs were created."""
    services = recipients(event)
    if not services:
        return 0
    payload = event.model_dump(mode="json")
    enqueued_at = timestamp_ms()
    keys: list[str] = []
    args: list[Any] = [expires_extra_ms, enqueued_at]
    for service in services:
        queue = queue_name(service)
        job = job_id(event, queue)
        keys += [job_key_prefix + job, result_key_prefix + job, queue]
        args += [job, serialize_job(HANDLE_EVENT, (payload,), {}, None, enqueued_at, serializer=serialize)]
    try:
        created = await redis.evalsha(_ENQUEUE_ALL_SHA, len(keys), *keys, *args)  # type: ignore[misc]
    except NoScriptError:  # a Redis that has not seen the script yet (or was restarted)
        created = await redis.eval(_ENQUEUE_ALL, len(keys), *keys, *args)  # type: ignore[misc]
    return int(created)


# --- a service's own jobs (besides events): the notifier's mail and webhook deliveries ----------


async def enqueue(
    redis: ArqRedis,
    service: Service,
    function: str,
    *args: Any,
    job_id: str,
    defer_by: timedelta | None = None,
) -> bool:
    """Enqueue one ``function`` job on ``service``'s queue, ``defer_by`` from now, unless a job
    with ``job_id`` is queued or its result kept; ``True`` when it was created."""
    options: dict[str, Any] = {"_job_id": job_id, "_queue_name": queue_name(service)}
    if defer_by is not None:
        options["_defer_by"] = defer_by
    return await redis.enqueue_job(function, *args, **options) is not None


async def withdraw(redis: ArqRedis, service: Service, job_ids: Iterable[str]) -> None:
    """Take waiting jobs off ``service``'s queue (one that has started already just runs)."""
    queue = queue_name(service)
    async with redis.pipeline(transaction=False) as pipe:
        for job in job_ids:
            pipe.zrem(queue, job)
            pipe.delete(job_key_prefix + job)
        await pipe.execute()


def job_function(coroutine: Callable[..., Any], *, keep_result: float) -> Function:
    """A worker's job function (arq's ``func``); ``keep_result=0``: its id is free again as soon
    as it finished."""
    return func(coroutine, keep_result=keep_result)
