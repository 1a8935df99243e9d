"""What a deployed container's settings must be, whatever deploys it (compose, Kubernetes): built
from exactly the container's environment (no .env file, nothing inherited), in prod mode, on
PostgreSQL as the service's own role, on a Redis with a password, calling its peers by names the
deployment defines, and with no address left on the container's own loopback."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

import pytest
from pydantic import SecretStr
from pydantic_settings import BaseSettings

from services.billing.settings import Settings as BillingSettings
from services.notifier.settings import Settings as NotifierSettings
from services.ticket_api.settings import Settings as TicketApiSettings
from services.triage.settings import Settings as TriageSettings

SETTINGS: dict[str, type[BaseSettings]] = {
    "ticket_api": TicketApiSettings,
    "triage": TriageSettings,
    "notifier": NotifierSettings,
    "billing": BillingSettings,
}
LOOPBACK = ("127.0.0.1", "localhost", "::1")
# Where a loopback value is no container's address: the listener's bind address (set to 0.0.0.0
# where it runs), and where people's browsers reach the gateway.
NOT_CONTAINER_ADDRESSES = {"inbound_smtp_host", "public_base_url"}
# Settings naming a peer inside the deployment (a compose service, a Kubernetes Service).
PEER_URLS = ("jwks_url", "ticket_api_url")


def services_run_by(command: list[str]) -> list[str]:
    """Which services' settings a container builds, read from what it runs."""
    line = " ".join(command)
    if "shared.migrate" in line:
        return list(SETTINGS)
    return [name for name in SETTINGS if f"services.{name}." in line]


def build_settings(cls: type[BaseSettings], env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """The settings as the container builds them: its environment only, no .env file."""
    for key in list(os.environ):
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return cls(_env_file=None)  # type: ignore[call-arg]


def check(settings: Any, service: str, where: str, peers: set[str]) -> None:
    """``settings`` (of ``service``, built for ``where``) are fit to run deployed; ``peers``:
    the host names the deployment gives its services."""
    cls = SETTINGS[service]
    assert settings.env == "prod", f"{where}: not in prod mode"
    for field, info in cls.model_fields.items():
        if info.is_required():
            assert getattr(settings, field) not in (None, ""), f"{where}: {field} is required"
    database = urlsplit(str(settings.database_url))
    assert database.scheme == "postgresql+asyncpg", f"{where}: on {database.scheme}, not PostgreSQL"
    assert database.password, f"{where}: the database needs a password"
    assert database.username == service, f"{where}: connects as {database.username}, not its own role"
    redis = urlsplit(str(settings.redis_url))
    assert redis.password, f"{where}: Redis needs its password"
    for url_field in PEER_URLS:
        host = urlsplit(str(getattr(settings, url_field))).hostname
        assert host in peers, f"{where}: {url_field} points at {host!r}, not a peer ({sorted(peers)})"
    for field, value in settings.model_dump().items():
        shown = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
        if field not in NOT_CONTAINER_ADDRESSES:
            assert not any(word in shown for word in LOOPBACK), (
                f"{where}: {field}={shown!r} is the container's own loopback"
            )
    if service == "notifier":
        billing = urlsplit(str(settings.billing_base_url)).hostname
        assert billing in peers, f"{where}: billing_base_url points at {billing!r}"
