"""The startup and shutdown every service worker shares: open the runtime, build the
idempotent consumer, run the outbox relay in the background."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Table

from shared.consumer import EventConsumer, EventHandler
from shared.events import Service
from shared.logging import configure_logging
from shared.queue import queues_lost
from shared.runtime import Runtime
from shared.settings import ServiceSettings
from shared.worker import Hook, start_background, stop_background


def lifecycle_hooks(
    settings: ServiceSettings, *, outbox: Table, processed_event: Table, handlers: Mapping[str, EventHandler]
) -> tuple[Hook, Hook]:
    async def startup(ctx: dict[str, Any]) -> None:
        configure_logging(f"{settings.service_name}.worker", settings.log_level)
        runtime = await Runtime.open(settings, outbox)
        ctx["runtime"] = runtime
        ctx["consumer"] = EventConsumer(
            table=processed_event, sessions=runtime.sessions, handlers=handlers, outbox=runtime.outbox
        )
        start_relay(ctx, runtime, settings)

    async def shutdown(ctx: dict[str, Any]) -> None:
        await stop_background(ctx)
        if "runtime" in ctx:
            await ctx["runtime"].close()

    return startup, shutdown


def start_relay(ctx: dict[str, Any], runtime: Runtime, settings: ServiceSettings) -> None:
    """Run the service's outbox relay for the worker's lifetime; it publishes recent events
    again when Redis lost its queues."""
    service = Service(settings.service_name)
    start_background(
        ctx,
        "outbox-relay",
        runtime.outbox.run_relay(
            interval_seconds=settings.outbox_relay_interval_seconds,
            grace_seconds=settings.outbox_relay_grace_seconds,
            queues_lost=functools.partial(queues_lost, runtime.redis, service),
            replay_window_seconds=settings.outbox_replay_window_seconds,
        ),
    )
