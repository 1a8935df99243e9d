"""``arq services.ticket_api.worker.WorkerSettings``"""

from __future__ import annotations

from arq import cron

from services.ticket_api.db import outbox, processed_event
from services.ticket_api.settings import Settings
from services.ticket_api.tasks import HANDLERS, purge_idempotency_records, purge_raw_email
from shared.events import Service
from shared.service_worker import lifecycle_hooks
from shared.worker import worker_settings

settings = Settings()
startup, shutdown = lifecycle_hooks(
    settings, outbox=outbox, processed_event=processed_event, handlers=HANDLERS
)

WorkerSettings = worker_settings(
    Service.TICKET_API,
    settings,
    startup=startup,
    shutdown=shutdown,
    cron_jobs=[
        cron(purge_idempotency_records, hour={3}, minute={17}, unique=True),  # type: ignore[arg-type]
        cron(purge_raw_email, hour={3}, minute={37}, unique=True),  # type: ignore[arg-type]
    ],
)
