"""``arq services.triage.worker.WorkerSettings``"""

from __future__ import annotations

from arq import cron

from services.triage.models import outbox, processed_event
from services.triage.settings import Settings
from services.triage.tasks import build_handlers, watch_sla
from shared.events import Service
from shared.service_worker import lifecycle_hooks
from shared.worker import worker_settings

settings = Settings()
startup, shutdown = lifecycle_hooks(
    settings, outbox=outbox, processed_event=processed_event, handlers=build_handlers(settings)
)

WorkerSettings = worker_settings(
    Service.TRIAGE,
    settings,
    startup=startup,
    shutdown=shutdown,
    # Every minute; unique: one run per tick whatever the number of workers.
    cron_jobs=[cron(watch_sla, second={0}, unique=True, timeout=25)],  # type: ignore[arg-type]
)
