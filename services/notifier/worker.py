"""``arq services.notifier.worker.WorkerSettings``"""

from __future__ import annotations

from typing import Any

from services.notifier.models import outbox, processed_event
from services.notifier.runtime import open_notifier
from services.notifier.settings import Settings
from services.notifier.tasks import JOB_FUNCTIONS, handlers, run_sweeper
from shared.consumer import EventConsumer
from shared.events import Service
from shared.logging import configure_logging
from shared.runtime import Runtime
from shared.service_worker import start_relay
from shared.worker import start_background, stop_background, worker_settings

settings = Settings()


async def startup(ctx: dict[str, Any]) -> None:
    configure_logging(f"{settings.service_name}.worker", settings.log_level)
    runtime = await Runtime.open(settings, outbox)
    notifier = open_notifier(settings, runtime, worker=True)
    ctx.update(runtime=runtime, notifier=notifier)
    ctx["consumer"] = EventConsumer(
        table=processed_event, sessions=runtime.sessions, handlers=handlers(notifier), outbox=runtime.outbox
    )
    start_relay(ctx, runtime, settings)
    start_background(ctx, "sweeper", run_sweeper(notifier))


async def shutdown(ctx: dict[str, Any]) -> None:
    await stop_background(ctx)
    if "notifier" in ctx:
        await ctx["notifier"].close()
    if "runtime" in ctx:
        await ctx["runtime"].close()


WorkerSettings = worker_settings(
    Service.NOTIFIER,
    settings,
    startup=startup,
    shutdown=shutdown,
    functions=JOB_FUNCTIONS,  # type: ignore[arg-type]
)
