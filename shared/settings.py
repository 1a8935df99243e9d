"""Settings base shared by every service.

Knobs common to all services are read from ``HELPDESK_*`` variables; a service's own knobs
carry its prefix (``TICKET_API_DATABASE_URL``). Every knob is documented in ``.env.example``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.service_auth import ClientCredentialsAuth

PLACEHOLDER_SECRET = "change-me"
MIN_SECRET_LENGTH = 32
MIN_DISTINCT_CHARACTERS = 12
# Words that make a key guessable however long it is (compared without case, digits or punctuation).
_PLACEHOLDER_WORDS = ("changeme", "secret", "password", "example", "placeholder", "default", "helpdesk")


def weak_secret_reason(secret: str) -> str | None:
    """Why ``secret`` is too weak to sign links and tokens in production, or ``None``.

    Strong enough: at least 32 characters, at least 12 different ones, and not made of a
    placeholder word (``secrets.token_urlsafe(48)`` passes; ``change-me`` × 4 does not)."""
    if len(secret) < MIN_SECRET_LENGTH:
        return f"it has {len(secret)} characters; use at least {MIN_SECRET_LENGTH}"
    if len(set(secret)) < MIN_DISTINCT_CHARACTERS:
        return f"it uses only {len(set(secret))} different characters; use a random key"
    letters = "".join(ch for ch in secret.lower() if ch.isalpha())
    if any(letters.replace(word, "") == "" for word in _PLACEHOLDER_WORDS if word in letters):
        return "it is made of a placeholder word; use a random key"
    return None


def common(name: str, default: Any, **kwargs: Any) -> Any:
    """A field read from the unprefixed ``HELPDESK_<NAME>`` variable in every service."""
    return Field(default, validation_alias=AliasChoices(f"HELPDESK_{name.upper()}"), **kwargs)


class ServiceSettings(BaseSettings):
    """Base for each service's settings; subclasses set ``service_name`` and ``env_prefix``."""

    service_name: ClassVar[str]
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    env: Literal["dev", "test", "prod"] = common("env", "dev")
    log_level: str = common("log_level", "INFO")
    var_dir: Path = common("var_dir", Path("var"))
    redis_url: str = common("redis_url", "redis://127.0.0.1:6379/0")
    public_base_url: str = common("public_base_url", "http://127.0.0.1:8080")
    secret_key: SecretStr = common(
        "secret_key", SecretStr(PLACEHOLDER_SECRET), description="signs links and tokens"
    )

    previous_secret_keys: list[SecretStr] = common(
        "previous_secret_keys",
        [],
        description="keys secret_key replaced (JSON list), still accepted in the Message-IDs and "
        "reply addresses of mail sent before the rotation",
    )

    clock_offset_seconds: float = common(
        "clock_offset_seconds", 0.0, description="whole-stack tests only: shift every service's clock"
    )
    jwt_issuer: str = common("jwt_issuer", "helpdesk")
    jwt_audience: str = common("jwt_audience", "helpdesk-api")
    jwks_url: str = common("jwks_url", "", description="ticket_api's JWKS; empty: read jwks_file")
    jwks_file: Path | None = common("jwks_file", None, description="default <var_dir>/keys/jwks.json")

    ticket_api_url: str = common(
        "ticket_api_url", "http://127.0.0.1:8101", description="ticket_api's internal address (tokens, JWKS)"
    )
    # This service's own OAuth client (kind "service"), for calls to other services.
    client_id: str = ""
    client_secret: SecretStr = SecretStr("")

    database_url: str = ""
    db_pool_size: int = Field(10, ge=1, le=200)
    db_echo: bool = False
    # arq: how many jobs one worker runs at once and how often it polls.
    worker_max_jobs: int = Field(100, ge=1)
    worker_poll_delay_seconds: float = Field(0.05, gt=0)
    outbox_relay_interval_seconds: float = Field(1.0, gt=0)
    outbox_relay_grace_seconds: float = Field(5.0, ge=0)
    # When Redis lost its data, events published this recently are published again (their jobs
    # may have been queued, deferred for a retry or running): longer than any backlog or backoff.
    outbox_replay_window_seconds: float = Field(3600.0, ge=0)

    @model_validator(mode="after")
    def _defaults_and_safety(self) -> ServiceSettings:
        if self.jwks_file is None:
            self.jwks_file = self.var_dir / "keys" / "jwks.json"
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{self.var_dir / f'{self.service_name}.db'}"
        if self.env == "prod" and (weak := weak_secret_reason(self.secret_key.get_secret_value())):
            raise ValueError(
                f"HELPDESK_SECRET_KEY is too weak for production: {weak} "
                "(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
        if self.env == "prod" and self.clock_offset_seconds:
            raise ValueError("HELPDESK_CLOCK_OFFSET_SECONDS is for tests; production runs on real time")
        return self

    def mail_keys(self) -> tuple[str, ...]:
        """The keys that check our Message-IDs and reply addresses: the current one first."""
        return (
            self.secret_key.get_secret_value(),
            *(k.get_secret_value() for k in self.previous_secret_keys),
        )

    def service_auth(self) -> ClientCredentialsAuth | None:
        """Credentials for calling another service, when this service has a client."""
        if not self.client_id:
            return None
        return ClientCredentialsAuth(
            token_url=f"{self.ticket_api_url.rstrip('/')}/api/v1/oauth/token",
            client_id=self.client_id,
            client_secret=self.client_secret.get_secret_value(),
        )

    @property
    def schema_name(self) -> str:
        """The PostgreSQL schema this service owns (ignored on SQLite: one file per service)."""
        return self.service_name


def service_config(env_prefix: str) -> SettingsConfigDict:
    """The settings configuration of one service: its own prefix, the shared ``.env`` file."""
    return SettingsConfigDict(env_prefix=env_prefix, env_file=".env", extra="ignore", populate_by_name=True)
