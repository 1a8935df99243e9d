"""``arq services.triage.worker.WorkerSettings``"""

from __future__ import annotations

from services.triage.models import outbox, processed_event
from services.triage.settings import Settings
from services.triage.tasks import HANDLERS
from shared.events import Service
from shared.service_worker import lifecycle_hooks
from shared.worker import worker_settings

settings = Settings()
startup, shutdown = lifecycle_hooks(
    settings, outbox=outbox, processed_event=processed_event, handlers=HANDLERS
)

WorkerSettings = worker_settings(Service.TRIAGE, settings, startup=startup, shutdown=shutdown)
