"""Static checks of deploy/compose.yaml (no Docker engine needed): the services it names exist,
what they run exists, every variable it uses is documented, and the gateway gets the one template
with every placeholder set."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.local import gateway as gw

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "compose.yaml"
ENV_EXAMPLE = DEPLOY / "compose.env.example"  # the containers' own
SETTINGS_REFERENCE = ROOT / ".env.example"  # every setting a service reads
SERVICES = ("ticket_api", "triage", "notifier", "billing")
# ${NAME}, ${NAME:-default}, ${NAME:?error} — but not $${...}, compose's escaped dollar.
INTERPOLATION = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)")
ENV_EXAMPLE_NAME = re.compile(r"^\s*#?\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=", re.MULTILINE)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict) and isinstance(data.get("services"), dict)
    return data


def _depends_on(service: dict[str, Any]) -> dict[str, str]:
    """depends_on as {name: condition}, for both the list and the mapping form."""
    raw = service.get("depends_on") or {}
    if isinstance(raw, list):
        return dict.fromkeys(raw, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in raw.items()}


def _command(service: dict[str, Any]) -> str:
    command = service.get("command", "")
    return " ".join(command) if isinstance(command, list) else str(command)


def _environment(service: dict[str, Any]) -> dict[str, str]:
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in raw)
    return {str(k): str(v) for k, v in raw.items()}


def _is_ours(service: dict[str, Any]) -> bool:
    return "build" in service


def test_depends_on_names_existing_services_with_healthchecks(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        for dependency, condition in _depends_on(service).items():
            assert dependency in services, f"{name} depends on unknown service {dependency}"
            assert condition in {"service_started", "service_healthy", "service_completed_successfully"}
            if condition == "service_healthy":
                assert "healthcheck" in services[dependency], f"{name} waits for {dependency} to be healthy"


def test_every_service_has_an_image_or_a_buildable_dockerfile(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        assert service.get("image") or service.get("build"), f"{name} has neither image nor build"
        if "build" in service:
            build = service["build"]
            context = (DEPLOY / build["context"]).resolve()
            assert (context / build.get("dockerfile", "Dockerfile")).is_file(), name
            assert context == ROOT, f"{name}: the build context must be the repo root"


def test_dockerfile_runs_as_non_root_and_copies_the_code() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim$", text, re.MULTILINE), "public base by default"
    assert re.search(r"^FROM \$\{PYTHON_IMAGE\}$", text, re.MULTILINE)
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users and not users[-1].startswith(("root", "0")), "the image must not run as root"
    assert re.search(r"^COPY requirements\.lock ", text, re.MULTILINE), "dependencies in their own layer"
    assert re.search(r"^COPY \. \./$", text, re.MULTILINE), "the code in one layer"
    sent = (ROOT / ".dockerignore").read_text().splitlines()
    for path in ("requirements.lock", "shared/", "services/", "deploy/"):
        assert f"!{path}" in sent, f"the build context must carry {path}"


def test_each_service_has_an_api_and_a_worker_running_existing_modules(compose: dict[str, Any]) -> None:
    if not (ROOT / "services").is_dir():
        pytest.skip("services/ is not written yet")
    services = compose["services"]
    for service in SERVICES:
        api = _command(services[f"{service}-api"])
        assert f"services.{service}.app:create_app" in api and "--factory" in api
        assert (ROOT / "services" / service / "app.py").is_file(), f"services/{service}/app.py is missing"
        assert "healthcheck" in services[f"{service}-api"]
        worker = _command(services[f"{service}-worker"])
        assert f"services.{service}.worker.WorkerSettings" in worker
        assert "shared.worker_main" in worker, "workers run through the entry point that sets uvloop"
        assert (ROOT / "services" / service / "worker.py").is_file(), (
            f"services/{service}/worker.py is missing"
        )
        for role in ("api", "worker"):
            conditions = _depends_on(services[f"{service}-{role}"])
            assert conditions.get("migrate") == "service_completed_successfully"
            assert conditions.get("redis") == "service_healthy"


def test_migrate_job_runs_after_postgres_is_healthy(compose: dict[str, Any]) -> None:
    migrate = compose["services"]["migrate"]
    assert "shared.migrate" in _command(migrate)
    assert _depends_on(migrate).get("postgres") == "service_healthy"
    assert migrate.get("restart") == "no"
    assert (ROOT / "shared" / "migrate.py").is_file()


def test_app_services_get_the_contract_environment(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if not _is_ours(service) or name == "smtp-sink":
            continue
        env = _environment(service)
        for key in ("HELPDESK_REDIS_URL", "HELPDESK_ENV", *(f"{s.upper()}_DATABASE_URL" for s in SERVICES)):
            assert key in env, f"{name} lacks {key}"
        assert env["HELPDESK_REDIS_URL"].startswith("redis://:${REDIS_PASSWORD"), "Redis needs its password"
        assert env["TICKET_API_DATABASE_URL"].startswith("postgresql+asyncpg://")
    redis_command = _command(compose["services"]["redis"])
    assert "--requirepass" in redis_command


def test_gateway_mounts_the_one_template_and_sets_every_placeholder(compose: dict[str, Any]) -> None:
    services = compose["services"]
    gateway = services["gateway"]
    mounts = [str(v).split(":") for v in gateway.get("volumes", [])]
    templates = [m for m in mounts if m[1].startswith("/etc/nginx/templates/")]
    assert len(templates) == 1, "the gateway must mount exactly the one template"
    source, target = templates[0][0], templates[0][1]
    assert (DEPLOY / source).resolve() == gw.TEMPLATE
    env = _environment(gateway)
    output_dir = env.get("NGINX_ENVSUBST_OUTPUT_DIR", "/etc/nginx/conf.d")
    rendered_name = Path(target).name.removesuffix(".template")
    assert f"{output_dir}/{rendered_name}" == "/etc/nginx/nginx.conf", "the template is a whole nginx.conf"
    needed = gw.placeholders()
    assert needed <= set(env), f"gateway env lacks {sorted(needed - set(env))}"
    filter_regex = re.compile(env["NGINX_ENVSUBST_FILTER"])
    assert all(filter_regex.search(name) for name in needed)
    for service in SERVICES:
        host = env[f"GW_{service.upper()}_UPSTREAM"].split(":")[0]
        assert host in services, f"upstream {host} is not a compose service"


@pytest.mark.skipif(gw.nginx_binary() is None, reason="nginx is not installed (scripts/bootstrap.sh)")
def test_template_with_the_compose_values_passes_nginx_t(compose: dict[str, Any], tmp_path: Path) -> None:
    env = _environment(compose["services"]["gateway"])
    # Compose defaults (${X:-default}) as compose would resolve them with nothing set.
    values = {name: re.sub(r"\$\{[A-Za-z_]+:-([^}]*)\}", r"\1", env[name]) for name in gw.placeholders()}
    # Only what cannot exist outside the container is swapped: paths, the user, and upstream
    # hosts (nginx -t resolves them), keeping their ports.
    values["GW_RUN_DIR"] = str(tmp_path)
    values["GW_ACCESS_LOG"] = str(tmp_path / "access.log")
    values["GW_WORKER_USER_DIRECTIVE"] = ""
    values["GW_LISTEN"] = f"127.0.0.1:{values['GW_LISTEN']}"
    for service in SERVICES:
        key = f"GW_{service.upper()}_UPSTREAM"
        values[key] = "127.0.0.1:" + values[key].rsplit(":", 1)[1]
    conf = tmp_path / "nginx.conf"
    conf.write_text(gw.render_text(values))
    nginx = gw.nginx_binary()
    assert nginx is not None
    result = subprocess.run(
        [nginx, "-e", "stderr", "-p", f"{tmp_path}/", "-c", str(conf), "-t"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_every_variable_compose_uses_is_documented(compose: dict[str, Any]) -> None:
    """Names interpolated anywhere (${NAME}) must be in the containers' env example
    (deploy/compose.env.example); names our own services receive, in the settings reference
    (.env.example); third-party images' own knobs (POSTGRES_*, NGINX_*, GW_*...) are theirs."""
    interpolated = set(INTERPOLATION.findall(COMPOSE_FILE.read_text()))
    received: set[str] = set()
    for service in compose["services"].values():
        if _is_ours(service):
            received |= set(_environment(service))
    assert "REDIS_PASSWORD" in interpolated and "POSTGRES_PASSWORD" in interpolated
    for example, used in ((ENV_EXAMPLE, interpolated), (SETTINGS_REFERENCE, received)):
        documented = set(ENV_EXAMPLE_NAME.findall(example.read_text()))
        missing = sorted(used - documented)
        assert not missing, f"compose uses variables that {example.name} does not document: {missing}"


def test_our_containers_get_time_to_start_before_health_counts(compose: dict[str, Any]) -> None:
    """A Python process on a busy 2-core machine took a minute to import (compose-check): a
    health check counting failures from the first second marks it unhealthy, and `up --wait`
    and every service depending on it give up."""
    for name, service in compose["services"].items():
        if _is_ours(service) and "healthcheck" in service:
            period = str(service["healthcheck"].get("start_period", "0s"))
            assert period.endswith("s") and int(period[:-1]) >= 120, f"{name}: start_period {period}"
