"""Events a service gave up on, kept to be replayed.

A consumer gives an event up only after :data:`shared.worker.MAX_TRIES` failed tries (about a day
and a half of backoff for a database or Redis outage, fewer for an error that is not transient, see
:func:`shared.worker.tries_allowed`). It then logs the ERROR line ``event.dead_lettered`` (alarm on
it) and keeps the event, with the last error, in the Redis hash ``helpdesk:dead:<service>`` (next to
the queue it came from, persisted like it). Nothing is lost: once the cause is fixed,

    python -m shared.dead_letters list [--service triage]
    python -m shared.dead_letters replay [--service triage] [EVENT_ID ...]

puts them back on their queue as new jobs (consumers are idempotent: one already applied meanwhile
changes nothing) and removes them from the hash.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from dataclasses import dataclass
from typing import Any

import orjson
from arq.connections import ArqRedis
from arq.constants import expires_extra_ms, job_key_prefix, result_key_prefix, retry_key_prefix
from arq.jobs import serialize_job
from arq.utils import timestamp_ms

from shared.clock import utcnow
from shared.events import Service
from shared.queue import HANDLE_EVENT, connect, queue_name, serialize

DEAD_PREFIX = "helpdesk:dead:"
ALARM = "event.dead_lettered"


def dead_key(queue: str) -> str:
    """``helpdesk:dead:<service>`` for the queue ``helpdesk:queue:<service>``."""
    return DEAD_PREFIX + queue.rsplit(":", 1)[-1]


@dataclass(frozen=True)
class DeadLetter:
    queue: str
    event_id: str
    event: dict[str, Any]
    error: str
    tries: int
    given_up_at: str


async def bury(redis: ArqRedis, *, queue: str, event: dict[str, Any], error: str, tries: int) -> None:
    """Keep ``event`` (as the job carried it) in the queue's dead letters."""
    entry = {"event": event, "error": error, "tries": tries, "given_up_at": utcnow().isoformat()}
    await redis.hset(dead_key(queue), str(event["id"]), orjson.dumps(entry).decode())  # type: ignore[misc]


async def buried(redis: ArqRedis, queue: str) -> list[DeadLetter]:
    entries: dict[bytes, bytes] = await redis.hgetall(dead_key(queue))  # type: ignore[misc]
    letters = []
    for event_id, raw in sorted(entries.items()):
        entry = orjson.loads(raw)
        letters.append(
            DeadLetter(
                queue, event_id.decode(), entry["event"], entry["error"], entry["tries"], entry["given_up_at"]
            )
        )
    return letters


async def replay(redis: ArqRedis, queue: str, event_ids: set[str] | None = None) -> int:
    """Enqueue the dead letters of ``queue`` (those in ``event_ids``, or all) again as fresh jobs
    with their usual id ``<event id>:<queue>``; returns how many."""
    replayed = 0
    for letter in await buried(redis, queue):
        if event_ids is not None and letter.event_id not in event_ids:
            continue
        job = f"{letter.event_id}:{queue}"
        now = timestamp_ms()
        payload = serialize_job(HANDLE_EVENT, (letter.event,), {}, None, now, serializer=serialize)
        async with redis.pipeline(transaction=True) as pipe:
            pipe.delete(result_key_prefix + job, retry_key_prefix + job)
            pipe.psetex(job_key_prefix + job, expires_extra_ms, payload)
            pipe.zadd(queue, {job: now})
            pipe.hdel(dead_key(queue), letter.event_id)
            await pipe.execute()
        replayed += 1
    return replayed


async def _main(args: argparse.Namespace) -> int:
    redis = await connect(args.redis_url or os.environ.get("HELPDESK_REDIS_URL", "redis://127.0.0.1:6379/0"))
    services = [Service(args.service)] if args.service else list(Service)
    try:
        total = 0
        for service in services:
            queue = queue_name(service)
            if args.command == "list":
                for letter in await buried(redis, queue):
                    print(
                        f"{service.value}\t{letter.event_id}\t{letter.event.get('type')}\t"
                        f"tries={letter.tries}\t{letter.given_up_at}\t{letter.error}"
                    )
                    total += 1
            else:
                count = await replay(redis, queue, set(args.event_ids) or None)
                print(f"{service.value}: {count} replayed")
                total += count
        if args.command == "list":
            print(f"{total} dead letters", file=sys.stderr)
    finally:
        await redis.aclose()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shared.dead_letters", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("command", choices=["list", "replay"])
    parser.add_argument("event_ids", nargs="*", help="replay only these events (default: all)")
    parser.add_argument("--service", choices=[service.value for service in Service])
    parser.add_argument("--redis-url", help="default: HELPDESK_REDIS_URL")
    return asyncio.run(_main(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
