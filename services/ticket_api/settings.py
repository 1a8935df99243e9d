from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field

from shared.settings import ServiceSettings, service_config


class Settings(ServiceSettings):
    service_name: ClassVar[str] = "ticket_api"
    model_config = service_config("TICKET_API_")

    idempotency_ttl_hours: int = Field(48, ge=24, description="how long Idempotency-Key answers are replayed")
    jwt_keys_dir: Path | None = Field(None, description="Ed25519 signing keys; default <var_dir>/keys")
    access_token_ttl_seconds: int = Field(900, ge=60, le=24 * 3600)
    refresh_token_ttl_days: int = Field(30, ge=1, le=365)
    sign_in_link_ttl_minutes: int = Field(15, ge=1, le=24 * 60)
    customer_token_ttl_seconds: int = Field(3600, ge=60, le=24 * 3600)

    @property
    def keys_dir(self) -> Path:
        return self.jwt_keys_dir or self.var_dir / "keys"
