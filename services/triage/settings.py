from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from shared.settings import ServiceSettings, service_config


class Settings(ServiceSettings):
    service_name: ClassVar[str] = "triage"
    model_config = service_config("TRIAGE_")

    # The SLA watcher warns once this share of a target is used (0.8: at 80%).
    sla_warning_share: float = Field(0.8, gt=0, lt=1)
    # Timers the watcher handles per transaction (it loops until none are due).
    sla_watch_batch_size: int = Field(200, ge=1, le=10_000)
