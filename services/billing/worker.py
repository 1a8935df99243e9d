"""``arq services.billing.worker.WorkerSettings``"""

from __future__ import annotations

from services.billing.models import outbox, processed_event
from services.billing.settings import Settings
from services.billing.tasks import HANDLERS
from shared.events import Service
from shared.service_worker import lifecycle_hooks
from shared.worker import worker_settings

settings = Settings()
startup, shutdown = lifecycle_hooks(
    settings, outbox=outbox, processed_event=processed_event, handlers=HANDLERS
)

WorkerSettings = worker_settings(Service.BILLING, settings, startup=startup, shutdown=shutdown)
