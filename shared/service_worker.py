"""The startup and shutdown every service worker shares: open the runtime, build the
idempotent consumer, run the outbox relay in the background."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Table

from shared.consumer import EventConsumer, EventHandler
from shared.logging import configure_logging
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
        start_background(
            ctx,
            "outbox-relay",
            runtime.outbox.run_relay(
                interval_seconds=settings.outbox_relay_interval_seconds,
                grace_seconds=settings.outbox_relay_grace_seconds,
            ),
        )

    async def shutdown(ctx: dict[str, Any]) -> None:
        await stop_background(ctx)
        if "runtime" in ctx:
            await ctx["runtime"].close()

    return startup, shutdown
