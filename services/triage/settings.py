from __future__ import annotations

from typing import ClassVar

from shared.settings import ServiceSettings, service_config


class Settings(ServiceSettings):
    service_name: ClassVar[str] = "triage"
    model_config = service_config("TRIAGE_")
