"""Every settings knob of every service is documented in .env.example, and settings refuse
unsafe production configurations."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import pytest
from pydantic import AliasChoices, ValidationError

from shared.events import Service
from shared.migrate import service_settings
from shared.settings import ServiceSettings, weak_secret_reason

ROOT = Path(__file__).resolve().parents[2]


def env_names(settings_type: type[ServiceSettings]) -> set[str]:
    prefix = settings_type.model_config.get("env_prefix", "")
    names = set()
    for field_name, field in settings_type.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(str(choice) for choice in alias.choices)
        else:
            names.add(f"{prefix}{field_name}".upper())
    return names


def documented() -> set[str]:
    text = (ROOT / ".env.example").read_text()
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", text, flags=re.MULTILINE))


@pytest.mark.parametrize("service", list(Service))
def test_every_knob_is_documented(service: Service) -> None:
    missing = env_names(type(service_settings(service))) - documented()
    assert not missing, f"document these in .env.example: {sorted(missing)}"


def test_service_knobs_carry_the_service_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIAGE_DB_POOL_SIZE", "7")
    monkeypatch.setenv("HELPDESK_REDIS_URL", "redis://example:6379/3")
    settings = service_settings(Service.TRIAGE)
    assert settings.db_pool_size == 7
    assert settings.redis_url == "redis://example:6379/3"
    assert service_settings(Service.BILLING).db_pool_size != 7


def test_default_database_is_a_sqlite_file_per_service(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HELPDESK_VAR_DIR", str(tmp_path))
    monkeypatch.delenv("NOTIFIER_DATABASE_URL", raising=False)
    assert service_settings(Service.NOTIFIER).database_url == f"sqlite+aiosqlite:///{tmp_path}/notifier.db"


def test_production_refuses_the_placeholder_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HELPDESK_ENV", "prod")
    monkeypatch.delenv("HELPDESK_SECRET_KEY", raising=False)
    with pytest.raises(ValidationError, match="HELPDESK_SECRET_KEY"):
        service_settings(Service.TICKET_API)


@pytest.mark.parametrize(
    "weak",
    [
        "",
        "x",
        "changeme",
        "CHANGE-ME",
        "change-me" * 4,
        "ChangeMe-ChangeMe-ChangeMe-ChangeMe!",
        "a" * 64,
        "abcabcabcabcabcabcabcabcabcabcabcabc",
        "short-but-random-Zq8",
    ],
)
def test_production_refuses_weak_secrets(monkeypatch: pytest.MonkeyPatch, weak: str) -> None:
    assert weak_secret_reason(weak) is not None
    monkeypatch.setenv("HELPDESK_ENV", "prod")
    monkeypatch.setenv("HELPDESK_SECRET_KEY", weak)
    with pytest.raises(ValidationError, match="HELPDESK_SECRET_KEY is too weak"):
        service_settings(Service.BILLING)


def test_production_takes_a_random_key_and_refuses_private_webhook_targets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HELPDESK_ENV", "prod")
    monkeypatch.setenv("HELPDESK_SECRET_KEY", secrets.token_urlsafe(48))
    assert service_settings(Service.NOTIFIER).env == "prod"
    monkeypatch.setenv("NOTIFIER_WEBHOOK_ALLOW_PRIVATE_ADDRESSES", "true")
    with pytest.raises(ValidationError, match="NOTIFIER_WEBHOOK_ALLOW_PRIVATE_ADDRESSES"):
        service_settings(Service.NOTIFIER)
    monkeypatch.setenv("HELPDESK_ENV", "dev")
    assert service_settings(Service.NOTIFIER).webhook_allow_private_addresses
