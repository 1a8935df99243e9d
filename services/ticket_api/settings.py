from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from shared.settings import ServiceSettings, service_config


class Settings(ServiceSettings):
    service_name: ClassVar[str] = "ticket_api"
    model_config = service_config("TICKET_API_")

    idempotency_ttl_hours: int = Field(48, ge=24, description="how long Idempotency-Key answers are replayed")
