"""schemathesis over every service's OpenAPI: generated requests, valid and not, from an admin,
a customer and a portal, against each service served by uvicorn (SQLite, this run's Redis).
No answer is a 5xx, and every status answered is one the operation documents."""

from __future__ import annotations

import asyncio
import importlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error, status_code_conformance

from deploy.local.probes import free_ports
from shared.events import Service
from shared.migrate import service_settings
from tests import auth
from tests.conftest import sqlite_copy


@schemathesis.serializer("message/rfc822")
def _raw_mail(context: object, value: object) -> bytes:
    """Inbound mail is any bytes: generated text, sent as it is."""
    return value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogateescape")


EXAMPLES = 12  # per operation and caller: bounded, so the whole walk stays within a minute or two


class _Served:
    def __init__(self, app: object, port: int) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))  # type: ignore[arg-type]
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve()), daemon=True)
        self.url = f"http://127.0.0.1:{port}"

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "the service did not start"
            time.sleep(0.05)
        return self.url

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(params=list(Service), ids=lambda s: s.value)
def served(
    request: pytest.FixtureRequest, sqlite_template: Path, redis_url: str, tmp_path: Path
) -> Iterator[str]:
    service: Service = request.param
    module = importlib.import_module(f"services.{service.value}.app")
    config = type(service_settings(service))(
        database_url=sqlite_copy(sqlite_template, service, tmp_path), redis_url=redis_url, var_dir=tmp_path
    )
    (port,) = free_ports(1)
    with _Served(module.create_app(config), port) as url:
        yield url


def test_generated_requests_get_documented_answers_and_never_a_5xx(served: str) -> None:
    schema = schemathesis.openapi.from_url(f"{served}/openapi.json")
    organization = "01900000-0000-7000-8000-00000000000a"
    callers = {
        "admin": auth.bearer(auth.admin()),
        "customer": auth.bearer(auth.customer(organization)),
        "portal": auth.bearer(auth.portal(organization)),
    }
    failures: list[str] = []
    calls: list[int] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for name, headers in callers.items():

            @given(case=operation.as_strategy())
            @settings(
                max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None
            )
            def fuzz(case: schemathesis.Case) -> None:
                calls.append(1)
                case.call_and_validate(
                    base_url=served,
                    headers=headers,  # noqa: B023 - fuzz() runs within this iteration
                    checks=[not_a_server_error, status_code_conformance],
                )

            try:
                fuzz()
            except (AssertionError, BaseExceptionGroup) as error:  # every operation's failures, collected
                failures.append(f"{name}: {operation.label}: {str(error)[:1500]}")
    assert not failures, "\n\n".join(failures)
    operations = len(list(schema.get_all_operations()))
    assert len(calls) >= operations * len(callers), "every operation was called by every caller"
    print(f"{served}: {len(calls)} generated requests over {operations} operations")
