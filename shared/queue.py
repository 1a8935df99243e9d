"""Our one door to the job queue (arq on Redis), so a successor could replace arq here alone.

One queue per service. Publishing an event enqueues one ``handle_event`` job per subscribing
service with the deterministic id ``<event id>:<queue>``: publishing the same event twice
while the first job (or its result) is still kept creates no second job. Jobs are JSON.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from arq.connections import ArqRedis, RedisSettings, create_pool

from shared.events import Event, Service, subscribers

__all__ = ["Event", "connect", "publish", "queue_name"]

log = logging.getLogger(__name__)

HANDLE_EVENT = "handle_event"
QUEUE_PREFIX = "helpdesk:queue:"
# Results are kept this long; while kept, a re-published event is refused as a duplicate job.
KEEP_RESULT_SECONDS = 3600


def queue_name(service: Service) -> str:
    return f"{QUEUE_PREFIX}{service.value}"


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


async def connect(redis_url: str) -> ArqRedis:
    """A Redis pool that enqueues JSON jobs."""
    return await create_pool(
        redis_settings(redis_url), job_serializer=serialize, job_deserializer=deserialize
    )


async def publish(redis: ArqRedis, event: Event) -> int:
    """Enqueue ``event`` for each subscriber; returns how many new jobs were created."""
    payload = event.model_dump(mode="json")
    created = 0
    for service in subscribers(event.type):
        queue = queue_name(service)
        job = await redis.enqueue_job(HANDLE_EVENT, payload, _job_id=job_id(event, queue), _queue_name=queue)
        created += job is not None
    return created
