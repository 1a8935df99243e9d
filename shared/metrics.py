"""Prometheus metrics of one service process: ``/metrics`` on each API, a small port on each worker.

What is measured (all ``helpdesk_*``):

- HTTP: requests by service, method, route *template* (``/api/v1/tickets/{ticket_id}``, never the
  raw path) and status, with latency histograms (:class:`MetricsMiddleware`);
- jobs: event jobs by queue, event type and outcome (``applied``, ``duplicate``, ``retry``,
  ``dead-lettered`` …), their duration, and the lag from enqueue to start (:func:`job_finished`);
- state, sampled when scraped (API) or every few seconds (worker): the queue's depth (jobs due
  or deferred), the outbox rows not yet published and the oldest one's age, the dead letters kept.

Not public: the gateway routes only ``/api/v1/…`` and its own paths to the services, so
``/metrics`` on an API is reached on the service's own address (compose's network, a Kubernetes
Service scraped by Prometheus inside the cluster). With ``HELPDESK_API_WORKERS`` > 1 each uvicorn
process counts for itself: scale with replicas (one process each) when scraping.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

from fastapi import APIRouter, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from redis.asyncio import Redis
from sqlalchemy import Table, func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared import dead_letters
from shared.events import Service
from shared.queue import queue_name
from shared.transient import is_transient

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
SAMPLE_TIMEOUT_SECONDS = 2.0
WORKER_SAMPLE_INTERVAL_SECONDS = 5.0

HTTP_REQUESTS = Counter(
    "helpdesk_http_requests",
    "HTTP requests answered, by route template and status",
    ["service", "method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "helpdesk_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template",
    ["service", "method", "route"],
    buckets=LATENCY_BUCKETS,
)
JOBS = Counter(
    "helpdesk_jobs", "Event jobs run, by queue, event type and outcome", ["queue", "type", "outcome"]
)
JOB_DURATION = Histogram(
    "helpdesk_job_duration_seconds", "Time one event job took", ["queue", "type"], buckets=LATENCY_BUCKETS
)
EVENT_LAG = Histogram(
    "helpdesk_event_lag_seconds",
    "From an event's enqueue to its job's start (queueing delay)",
    ["queue"],
    buckets=LATENCY_BUCKETS,
)
QUEUE_DEPTH = Gauge("helpdesk_queue_depth", "Jobs in the queue (due or deferred)", ["queue"])
OUTBOX_UNPUBLISHED = Gauge("helpdesk_outbox_unpublished", "Outbox rows not yet published", ["service"])
OUTBOX_OLDEST_AGE = Gauge(
    "helpdesk_outbox_oldest_unpublished_age_seconds", "Age of the oldest unpublished outbox row", ["service"]
)
DEAD_LETTERS = Gauge("helpdesk_dead_letters", "Given-up events kept for replay", ["service"])
SAMPLE_ERRORS = Counter("helpdesk_metrics_sample_errors", "Samples that could not be taken", ["what"])


def route_template(scope: Scope) -> str:
    """The matched route's whole path template (``/api/v1/triage/tickets/{ticket_id}/sla``);
    ``unmatched`` where no API route matched (unknown paths, the docs), so labels stay bounded.
    A route of an included router knows only its own part (``/tickets/{ticket_id}/sla``): the
    prefix is the request path's leading segments, which a prefix without parameters equals."""
    template = getattr(scope.get("route"), "path", None)
    if not isinstance(template, str):
        return "unmatched"
    if "{" not in template or ":path}" in template:
        return template if "{" in template else str(scope.get("path") or template)
    segments = str(scope.get("path", "")).split("/")
    own = template.split("/")
    if len(segments) < len(own):
        return template
    return "/".join(segments[: len(segments) - len(own) + 1]) + template


def _service_of(scope: Scope) -> str:
    """The service an app serves, from its runtime (set by the lifespan)."""
    runtime = getattr(getattr(scope.get("app"), "state", None), "runtime", None)
    return str(runtime.settings.service_name) if runtime is not None else "unknown"


class MetricsMiddleware:
    """Counts every answer (an exception as the 500 or 503 it becomes) with its duration."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.service: str | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        except Exception as error:
            status = 503 if is_transient(error) else 500
            raise
        finally:
            if self.service is None or self.service == "unknown":
                self.service = _service_of(scope)
            route = route_template(scope)
            method = str(scope.get("method", ""))
            HTTP_REQUESTS.labels(self.service, method, route, str(status)).inc()
            HTTP_DURATION.labels(self.service, method, route).observe(time.perf_counter() - started)


def job_finished(
    queue: str, event_type: str, outcome: str, *, started: float, enqueued: float | None
) -> None:
    """One event job ended (``started``/``enqueued``: epoch seconds)."""
    now = time.time()
    JOBS.labels(queue, event_type, outcome).inc()
    JOB_DURATION.labels(queue, event_type).observe(now - started)
    if enqueued is not None:
        EVENT_LAG.labels(queue).observe(max(0.0, started - enqueued))


async def sample_state(
    *, service: str, queue: str, redis: Redis, outbox: Table | None, sessions: Any
) -> None:
    """Read the queue's depth, the dead letters and the outbox backlog into their gauges. Each
    read is bounded; one that fails (Redis or the database down) leaves its gauge as it was and
    counts in ``helpdesk_metrics_sample_errors``."""

    async def bounded(what: str, read: Callable[[], Awaitable[None]]) -> None:
        try:
            async with asyncio.timeout(SAMPLE_TIMEOUT_SECONDS):
                await read()
        except Exception:
            SAMPLE_ERRORS.labels(what).inc()
            log.debug("metrics sample %s failed", what, exc_info=True)

    async def queue_depth() -> None:
        QUEUE_DEPTH.labels(queue).set(await cast(Awaitable[int], redis.zcard(queue)))

    async def dead() -> None:
        DEAD_LETTERS.labels(service).set(await cast(Awaitable[int], redis.hlen(dead_letters.dead_key(queue))))

    async def backlog() -> None:
        assert outbox is not None and sessions is not None
        async with sessions() as session:
            row = (
                await session.execute(
                    select(func.count(), func.min(outbox.c.created_at)).where(outbox.c.published_at.is_(None))
                )
            ).one()
        OUTBOX_UNPUBLISHED.labels(service).set(row[0])
        oldest = row[1]
        OUTBOX_OLDEST_AGE.labels(service).set(
            0.0 if oldest is None else max(0.0, time.time() - oldest.timestamp())
        )

    reads = [bounded("queue", queue_depth), bounded("dead_letters", dead)]
    if outbox is not None and sessions is not None:
        reads.append(bounded("outbox", backlog))
    await asyncio.gather(*reads)


def exposition() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def metrics_router() -> APIRouter:
    """``GET /metrics`` of an API process (not in the OpenAPI: no public route)."""
    router = APIRouter()

    @router.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        runtime = getattr(request.app.state, "runtime", None)
        if runtime is not None:
            service = str(runtime.settings.service_name)
            await sample_state(
                service=service,
                queue=queue_name(Service(service)),
                redis=runtime.redis,
                outbox=runtime.outbox.table,
                sessions=runtime.readers,
            )
        return exposition()

    return router


_server_lock = threading.Lock()
_server_port: int | None = None


def serve_worker_metrics(port: int, address: str = "0.0.0.0") -> None:
    """A worker's exposition on its own port (a thread; once per process)."""
    global _server_port
    with _server_lock:
        if _server_port is None:
            start_http_server(port, addr=address)
            _server_port = port


async def sample_worker_forever(
    *,
    service: str,
    queue: str,
    redis: Redis,
    ctx: dict[str, Any],
    interval: float = WORKER_SAMPLE_INTERVAL_SECONDS,
) -> None:
    """The worker's gauges, every ``interval`` seconds, for as long as the worker runs."""
    while True:
        runtime = ctx.get("runtime")
        await sample_state(
            service=service,
            queue=queue,
            redis=redis,
            outbox=runtime.outbox.table if runtime is not None else None,
            sessions=runtime.readers if runtime is not None else None,
        )
        await asyncio.sleep(interval)
