"""``arq services.billing.worker.WorkerSettings``"""

from __future__ import annotations

from arq import cron

from services.billing.context import Billing
from services.billing.models import outbox, processed_event
from services.billing.settings import Settings
from services.billing.tasks import (
    build_handlers,
    close_due_periods,
    purge_idempotency_records,
    settle_due_closes,
)
from shared.events import Service
from shared.service_worker import lifecycle_hooks
from shared.worker import worker_settings

settings = Settings()
startup, shutdown = lifecycle_hooks(
    settings, outbox=outbox, processed_event=processed_event, handlers=build_handlers(Billing(settings))
)

WorkerSettings = worker_settings(
    Service.BILLING,
    settings,
    startup=startup,
    shutdown=shutdown,
    cron_jobs=[
        # Closes are charged a few seconds after they happen (see close_settle_delay_seconds).
        cron(settle_due_closes, second=set(range(0, 60, 5)), unique=True, run_at_startup=True),
        # Periods end at local midnight in every organization's timezone (some a half or
        # quarter hour off UTC): look every five minutes; a run with nothing due is one query.
        cron(close_due_periods, minute=set(range(0, 60, 5)), unique=True),
        cron(purge_idempotency_records, hour={3}, minute={23}, unique=True),  # type: ignore[arg-type]
    ],
)
