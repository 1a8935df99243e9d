"""Every container of deploy/compose.yaml gets every setting its service needs, as compose would
resolve them from the containers' own env example (deploy/compose.env.example) with its secrets
filled in: each service's Settings is built from exactly the container's environment (no .env
file, nothing inherited) and must come out in prod mode, on PostgreSQL and the compose Redis,
with no address left on the container's own loopback. The env example and compose agree, and
every named volume an app container writes is a directory the image creates for its user (a
root-owned volume was issue 18's start-up failure). No Docker engine needed."""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from services.ticket_api.settings import Settings as TicketApiSettings
from tests.deploy import settings_contract as contract

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "deploy" / "compose.yaml"
ENV_EXAMPLE = ROOT / "deploy" / "compose.env.example"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
INTERPOLATION = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


class Unset(Exception):
    pass


def env_example() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value
    return values


def required_names() -> set[str]:
    """The variables compose refuses to start without (``${NAME:?...}``)."""
    return {m.group(1) for m in INTERPOLATION.finditer(COMPOSE_FILE.read_text()) if m.group(2) == ":?"}


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's ${NAME}, ${NAME:-default} and ${NAME:?error} over a parsed value."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        name, operator, argument = match.group(1), match.group(2), match.group(3)
        current = env.get(name, "")
        if operator == ":-":
            return current or argument
        if operator == ":?" and not current:
            raise Unset(f"{name}: {argument}")
        return current

    return INTERPOLATION.sub(one, value).replace("$$", "$")


def filled_env() -> dict[str, str]:
    env = env_example()
    for name in required_names():
        env[name] = env.get(name) or secrets.token_urlsafe(32)
    return env


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    data = interpolate(yaml.safe_load(COMPOSE_FILE.read_text()), filled_env())
    return {str(name): spec for name, spec in data["services"].items()}


def environment(spec: dict[str, Any]) -> dict[str, str]:
    return {str(k): "" if v is None else str(v) for k, v in (spec.get("environment") or {}).items()}


def app_containers(services: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    pairs = [
        (c, s)
        for c, spec in services.items()
        if "build" in spec
        for s in contract.services_run_by(spec["command"])
    ]
    assert {s for _, s in pairs} == set(contract.SETTINGS), "every service runs somewhere"
    return pairs


def test_compose_refuses_to_start_without_each_secret() -> None:
    required = required_names()
    assert {"HELPDESK_SECRET_KEY", "POSTGRES_PASSWORD", "REDIS_PASSWORD"} <= required
    example = env_example()
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    for name in required:
        assert name in example and example[name] == "", f"{name}: the example leaves it to be set"
        env = filled_env() | {name: ""}
        with pytest.raises(Unset, match=name):
            interpolate(data, env)


def test_env_example_and_compose_name_the_same_variables() -> None:
    used = {m.group(1) for m in INTERPOLATION.finditer(COMPOSE_FILE.read_text())}
    text = ENV_EXAMPLE.read_text()
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", text, re.MULTILINE))
    assert not used - documented, f"compose uses, the example lacks: {sorted(used - documented)}"
    assert not documented - used, f"the example names what compose ignores: {sorted(documented - used)}"
    example = env_example()
    assert example["HELPDESK_ENV"] == "prod"
    assert example["HELPDESK_SMTP_HOST"] not in contract.LOOPBACK


@pytest.mark.parametrize("service", sorted(contract.SETTINGS))
def test_every_container_has_what_its_service_requires(
    services: dict[str, dict[str, Any]], service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for container, name in app_containers(services):
        if name != service:
            continue
        settings = contract.build_settings(
            contract.SETTINGS[service], environment(services[container]), monkeypatch
        )
        where = f"{container} ({service})"
        contract.check(settings, service, where, peers=set(services))
        database = urlsplit(str(settings.database_url))
        redis = urlsplit(str(settings.redis_url))
        assert database.hostname in services and redis.hostname in services, f"{where}: no compose service"
        if service == "notifier":
            assert settings.smtp_host in services, f"{where}: mail relay is no compose service"
        if container == "inbound-smtp":
            assert settings.inbound_smtp_host == "0.0.0.0", "the listener must bind every address"


def test_containers_that_sign_or_store_files_mount_them(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """ticket_api's keys and attachments are on named volumes where they are written or read."""
    for container, service in app_containers(services):
        if service != "ticket_api":
            continue
        settings = contract.build_settings(TicketApiSettings, environment(services[container]), monkeypatch)
        targets = {str(v).split(":")[1] for v in services[container].get("volumes", [])}
        keys_dir = str(settings.jwt_keys_dir)
        if container in ("migrate", "ticket_api-api"):
            assert keys_dir in targets, f"{container}: the signing keys ({keys_dir}) are not mounted"
        if container in ("ticket_api-api", "inbound-smtp"):
            attachments = str(settings.attachments_dir or Path(settings.var_dir) / "attachments")
            assert attachments in targets, f"{container}: attachments ({attachments}) are not on a volume"


def test_the_image_owns_every_named_volume_mount_point(services: dict[str, dict[str, Any]]) -> None:
    """Docker gives a new named volume the owner of the image's directory under it: each target
    must be created (and chowned to the service's user) in deploy/Dockerfile."""
    text = DOCKERFILE.read_text()
    made = set(re.findall(r"mkdir -p ([^&\\\n]+)", text)[-1].split())
    chowned = " ".join(re.findall(r"chown -R helpdesk:helpdesk ([^&\\\n]+)", text))
    for container, spec in services.items():
        if "build" not in spec:
            continue
        for volume in spec.get("volumes", []):
            source, target = str(volume).split(":")[:2]
            if source.startswith((".", "/")):
                continue  # a bind mount: the host's ownership
            relative = target.removeprefix("/app/")
            assert relative in made, f"{container}: {target} is not made in the image"
            assert any(relative == c or relative.startswith(c + "/") for c in chowned.split()), (
                f"{container}: {target} is not owned by the service's user"
            )
