"""Every route of every service, walked from its OpenAPI: no route answers without a valid
token, and (ticket_api) no route hands one organization's objects to another's callers."""

from __future__ import annotations

import importlib
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from shared.events import Service
from shared.migrate import service_settings
from tests import auth
from tests.conftest import sqlite_copy

# Routes anyone may call: liveness probes, API documentation, getting a token, public keys.
PUBLIC = re.compile(
    r"^/(healthz|readyz|docs.*|redoc|openapi\.json|\.well-known/jwks\.json)$"
    r"|^/api/v1/(oauth/token|auth/(login|refresh|magic-link|magic-link/redeem)|\.well-known/jwks\.json)$"
    # The links in customer mail (feedback, the ticket's page, booking and writing from it): the signed
    # token in the path is the credential.
    r"|^/api/v1/feedback/\{token\}$|^/api/v1/ticket-status/\{token\}(/appointment|/messages)?$"
)
SAMPLE_ID = "01900000-0000-7000-8000-000000000001"


def operations(app: FastAPI) -> list[tuple[str, str]]:
    return [
        (method.upper(), path)
        for path, item in app.openapi()["paths"].items()
        for method in item
        if not PUBLIC.match(path)
    ]


def example_body(app: FastAPI, method: str, path: str) -> Any:
    """The documented example of a route's JSON body (every body has one), or ``{}``."""
    spec = app.openapi()
    body = (
        spec["paths"][path][method.lower()].get("requestBody", {}).get("content", {}).get("application/json")
    )
    if body is None:
        return {}
    name = body["schema"]["$ref"].rsplit("/", 1)[-1]
    return spec["components"]["schemas"][name]["examples"][0]


def concrete(path: str, ids: dict[str, str] | None = None) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: (ids or {}).get(m.group(1), SAMPLE_ID), path)


@pytest.fixture(params=list(Service), ids=lambda s: s.value)
async def service_client(
    request: pytest.FixtureRequest, sqlite_template: Path, redis_url: str, tmp_path: Path
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    service: Service = request.param
    module = importlib.import_module(f"services.{service.value}.app")
    settings = type(service_settings(service))(
        database_url=sqlite_copy(sqlite_template, service, tmp_path), redis_url=redis_url, var_dir=tmp_path
    )
    app: FastAPI = module.create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://svc.test") as client:
            yield app, client


def bad_tokens() -> dict[str, str]:
    good = auth.issue_token(auth.admin())
    head, body, signature = good.split(".")
    return {
        "anonymous": "",
        "expired": auth.issue_token(auth.admin(), ttl_seconds=60, now=time.time() - 3600),
        "tampered": f"{head}.{body}.{signature[:-4]}AAAA",
        "not a jwt": "hd_admin_legacy-style-token",
    }


async def test_no_route_answers_without_a_valid_token(
    service_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = service_client
    routes = operations(app)
    assert routes or app.title, "a service with no routes yet still has its probes"
    for name, token in bad_tokens().items():
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        for method, path in routes:
            response = await client.request(method, concrete(path), headers=headers, json={})
            assert response.status_code == 401, f"{name}: {method} {path} answered {response.status_code}"
            assert response.headers["content-type"] == "application/problem+json"


async def _objects_of_organization_a(client: httpx.AsyncClient) -> tuple[dict[str, str], dict[str, Any]]:
    admin = auth.bearer(auth.admin())
    agent = (
        await client.post("/api/v1/agents", json={"email": "a@helpdesk.test", "name": "A"}, headers=admin)
    ).json()
    org_a = (
        await client.post(
            "/api/v1/organizations",
            json={"name": "A", "support_tier": "hourly", "email_domains": ["a.test"]},
            headers=admin,
        )
    ).json()
    org_b = (
        await client.post(
            "/api/v1/organizations",
            json={"name": "B", "support_tier": "hourly", "email_domains": ["b.test"]},
            headers=admin,
        )
    ).json()
    ticket = (
        await client.post(
            "/api/v1/tickets",
            json={"contact": {"email": "x@a.test"}, "subject": "s", "description": "d", "urgency": "low"},
            headers=admin,
        )
    ).json()
    agent_headers = auth.bearer(auth.agent(agent["id"]))
    entry = (
        await client.post(
            f"/api/v1/tickets/{ticket['id']}/time-entries", json={"minutes": 5}, headers=agent_headers
        )
    ).json()
    client_created = (
        await client.post(
            "/api/v1/clients", json={"name": "p", "organization_ids": [org_a["id"]]}, headers=admin
        )
    ).json()
    ids = {
        "ticket_id": ticket["id"],
        "contact_id": ticket["contact_id"],
        "organization_id": org_a["id"],
        "agent_id": agent["id"],
        "entry_id": entry["id"],
        "client_uuid": client_created["client"]["id"],
        "number": ticket["number"],
    }
    return ids, org_b


async def test_another_organizations_callers_never_reach_its_objects(
    sqlite_template: Path, redis_url: str, tmp_path: Path
) -> None:
    from services.ticket_api.app import create_app
    from services.ticket_api.settings import Settings

    settings = Settings(
        database_url=sqlite_copy(sqlite_template, Service.TICKET_API, tmp_path),
        redis_url=redis_url,
        var_dir=tmp_path,
    )
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc.test") as client,
    ):
        ids, org_b = await _objects_of_organization_a(client)
        outsiders = {
            "portal of B": auth.bearer(auth.portal(org_b["id"])),
            "customer of B": auth.bearer(auth.customer(org_b["id"])),
            "customer of A (another person)": auth.bearer(auth.customer(ids["organization_id"])),
        }
        walked = 0
        for method, path in operations(app):
            if "{" not in path:
                continue
            walked += 1
            for name, headers in outsiders.items():
                if (
                    name.startswith("customer of A")
                    and path.startswith("/api/v1/organizations/")
                    and method == "GET"
                ):
                    continue  # a customer may read their own organization
                response = await client.request(
                    method, concrete(path, ids), headers=headers, json=example_body(app, method, path)
                )
                assert response.status_code in (403, 404), f"{name}: {method} {path} → {response.status_code}"
                assert response.headers["content-type"] == "application/problem+json"
                assert "x@a.test" not in response.text
        assert walked >= 15, "the walk must cover every route with an object id"
