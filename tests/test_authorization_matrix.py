"""Every route of every service, walked from its OpenAPI: no route answers without a valid
token, and (ticket_api) no route hands one organization's objects to another's callers."""

from __future__ import annotations

import contextlib
import importlib
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from fastapi import FastAPI

from shared.events import Service
from shared.migrate import service_settings
from shared.principal import Principal
from tests import auth
from tests.conftest import sqlite_copy

# Routes anyone may call: liveness probes, API documentation, getting a token, public keys.
PUBLIC = re.compile(
    r"^/(healthz|readyz|docs.*|redoc|openapi\.json|\.well-known/jwks\.json)$"
    r"|^/api/v1/(oauth/token|auth/(login|refresh|magic-link|magic-link/redeem|session/refresh)|\.well-known/jwks\.json)$"
    # The links in customer mail (feedback, the ticket's page, booking and writing from it): the signed
    # token in the path is the credential.
    r"|^/api/v1/feedback/\{token\}$|^/api/v1/ticket-status/\{token\}(/appointment|/messages)?$"
)
# Signing in to the browser session; signing out of it (DELETE, same path) needs a token.
PUBLIC_OPERATIONS = frozenset({("POST", "/api/v1/auth/session")})
SAMPLE_ID = "01900000-0000-7000-8000-000000000001"


def operations(app: FastAPI) -> list[tuple[str, str]]:
    return [
        (method.upper(), path)
        for path, item in app.openapi()["paths"].items()
        for method in item
        if not PUBLIC.match(path) and (method.upper(), path) not in PUBLIC_OPERATIONS
    ]


def example_body(app: FastAPI, method: str, path: str) -> Any:
    """The documented example of a route's JSON body (every body has one), or ``{}``."""
    spec = app.openapi()
    body = (
        spec["paths"][path][method.lower()].get("requestBody", {}).get("content", {}).get("application/json")
    )
    if body is None:
        return {}
    schema = body["schema"]
    refs = [schema.get("$ref")] + [option.get("$ref") for option in schema.get("anyOf", [])]
    name = next(ref for ref in refs if ref).rsplit("/", 1)[-1]
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
        ids, org_b = await _organization_a_in_ticket_api(client)
        outsiders = {
            "portal of B": auth.bearer(auth.portal(org_b)),
            "customer of B": auth.bearer(auth.customer(org_b)),
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
                assert SECRET_EMAIL not in response.text
        assert walked >= 15, "the walk must cover every route with an object id"


# --- who may call what: every route of every service × every kind of caller ----------------------
#
# The callers: staff (admin, agent, a service client), the customer who opened organization A's
# ticket, a colleague of theirs (another contact of A), a customer of B, a portal of A holding one
# scope at a time, and a portal of B holding them all. Each route names the callers it admits; a
# caller it does not admit must get 403 (a role or scope it lacks) or 404 (an object it may not
# know of), and never any of A's private words. A route missing here fails the walk.

STAFF = frozenset({"admin", "agent", "service"})
ADMINS = frozenset({"admin", "service"})
PORTAL_SCOPES_WALKED = ("tickets:read", "tickets:write", "webhooks:manage", "billing:read")
READERS = STAFF | {"customer", "portal tickets:read"}  # of A's ticket: its customer, A's portal
WRITERS = STAFF | {"customer", "portal tickets:write"}
LISTERS = READERS | {"colleague", "customer of B", "portal of B"}  # lists: each sees their own
OUTSIDERS = frozenset({"colleague", "customer of B", "portal of B"})  # of A's ticket
BILLING_READERS = STAFF | {"portal billing:read"}
WEBHOOK_MANAGERS = ADMINS | {"portal webhooks:manage", "portal of B"}

POLICY: dict[str, dict[str, frozenset[str]]] = {
    "ticket_api": {
        "POST /api/v1/tickets": STAFF
        | {"customer", "colleague", "customer of B", "portal tickets:write", "portal of B"},
        "GET /api/v1/tickets": LISTERS,
        "GET /api/v1/tickets/counts": LISTERS,
        "GET /api/v1/tickets/by-number/{number}": READERS,
        "GET /api/v1/tickets/{ticket_id}": READERS,
        "PATCH /api/v1/tickets/{ticket_id}": WRITERS,
        "POST /api/v1/tickets/{ticket_id}/status": WRITERS,
        "POST /api/v1/tickets/{ticket_id}/messages": WRITERS,
        "GET /api/v1/tickets/{ticket_id}/messages": READERS,
        "GET /api/v1/tickets/{ticket_id}/audit": STAFF,
        "POST /api/v1/tickets/{ticket_id}/time-entries": STAFF,
        "GET /api/v1/tickets/{ticket_id}/time-entries": READERS,  # the time spent on their ticket
        "PATCH /api/v1/time-entries/{entry_id}": STAFF,
        "DELETE /api/v1/time-entries/{entry_id}": STAFF,
        "GET /api/v1/tickets/{ticket_id}/appointment-slots": READERS,
        "POST /api/v1/tickets/{ticket_id}/appointments": WRITERS,
        "GET /api/v1/tickets/{ticket_id}/appointments": READERS,
        "GET /api/v1/appointments/{appointment_id}": READERS,
        "POST /api/v1/appointments/{appointment_id}/reschedule": WRITERS,
        "POST /api/v1/appointments/{appointment_id}/cancel": WRITERS,
        "POST /api/v1/appointments/{appointment_id}/complete": STAFF,
        "POST /api/v1/agents/{agent_id}/time-off": STAFF,
        "GET /api/v1/agents/{agent_id}/time-off": STAFF,
        "DELETE /api/v1/agents/{agent_id}/time-off/{time_off_id}": STAFF,
        "GET /api/v1/call-tasks": STAFF,
        "POST /api/v1/call-tasks/{task_id}/complete": STAFF,
        "GET /api/v1/tickets/{ticket_id}/feedback": READERS,
        "POST /api/v1/organizations": ADMINS,
        "GET /api/v1/organizations": LISTERS,
        "GET /api/v1/organizations/{organization_id}": READERS | {"colleague"},
        "PATCH /api/v1/organizations/{organization_id}": ADMINS,
        "POST /api/v1/contacts": STAFF | {"portal tickets:write"},
        "GET /api/v1/contacts": LISTERS,
        "GET /api/v1/contacts/{contact_id}": READERS,
        "PATCH /api/v1/contacts/{contact_id}": WRITERS,
        "POST /api/v1/agents": ADMINS,
        "GET /api/v1/agents": STAFF,
        "GET /api/v1/agents/{agent_id}": STAFF,
        "PATCH /api/v1/agents/{agent_id}": ADMINS,
        "POST /api/v1/auth/logout": LISTERS,
        "DELETE /api/v1/auth/session": LISTERS,
        "PUT /api/v1/agents/{agent_id}/password": ADMINS | {"agent"},
        "POST /api/v1/clients": ADMINS,
        "GET /api/v1/clients": ADMINS,
        "GET /api/v1/clients/{client_uuid}": ADMINS,
        "DELETE /api/v1/clients/{client_uuid}": ADMINS,
        "POST /api/v1/clients/{client_uuid}/secrets": ADMINS,
        "POST /api/v1/inbound/email": STAFF,
        "GET /api/v1/inbound/emails": STAFF,
        "GET /api/v1/inbound/emails/{inbound_id}": STAFF,
        "GET /api/v1/inbound/emails/{inbound_id}/raw": STAFF,
        "GET /api/v1/tickets/{ticket_id}/attachments": READERS,
        "GET /api/v1/attachments/{attachment_id}": READERS,
        "GET /api/v1/inbound/sla-documents": STAFF,
        "POST /api/v1/inbound/sla-documents/{review_id}/confirm": ADMINS,
    },
    "triage": {
        "GET /api/v1/triage/tickets/{ticket_id}/decisions": STAFF,
        "GET /api/v1/triage/tickets/{ticket_id}/sla": STAFF,
        "POST /api/v1/triage/tickets/{ticket_id}/triage": STAFF,
        "POST /api/v1/triage/sla/preview": STAFF | {"portal tickets:read"},
        "GET /api/v1/triage/matrix": STAFF,
        "PUT /api/v1/triage/matrix": ADMINS,
        "GET /api/v1/triage/policies": STAFF,
        "PUT /api/v1/triage/policies": ADMINS,
        "GET /api/v1/triage/calendars": STAFF,
        "GET /api/v1/triage/calendars/{name}": STAFF,
        "PUT /api/v1/triage/calendars/{name}": ADMINS,
        "PUT /api/v1/triage/organizations/{organization_id}/calendar": ADMINS,
    },
    "notifier": {
        "GET /api/v1/notifications/suppressions": STAFF,
        "DELETE /api/v1/notifications/suppressions/{address}": ADMINS,
        "GET /api/v1/notifications": STAFF,
        "GET /api/v1/notifications/{notification_id}": STAFF,
        "POST /api/v1/notifications/{notification_id}/resend": STAFF,
        "POST /api/v1/webhooks/subscriptions": WEBHOOK_MANAGERS,
        "GET /api/v1/webhooks/subscriptions": WEBHOOK_MANAGERS,
        "GET /api/v1/webhooks/subscriptions/{subscription_id}": WEBHOOK_MANAGERS,
        "PATCH /api/v1/webhooks/subscriptions/{subscription_id}": WEBHOOK_MANAGERS,
        "DELETE /api/v1/webhooks/subscriptions/{subscription_id}": WEBHOOK_MANAGERS,
        "POST /api/v1/webhooks/subscriptions/{subscription_id}/rotate-secret": WEBHOOK_MANAGERS,
        "GET /api/v1/webhooks/subscriptions/{subscription_id}/deliveries": WEBHOOK_MANAGERS,
        "GET /api/v1/webhooks/deliveries/{delivery_id}": WEBHOOK_MANAGERS,
        "POST /api/v1/webhooks/deliveries/{delivery_id}/redeliver": WEBHOOK_MANAGERS,
    },
    "billing": {
        "GET /api/v1/billing/accounts": BILLING_READERS | {"portal of B"},
        "GET /api/v1/billing/accounts/{organization_id}": BILLING_READERS,
        "PATCH /api/v1/billing/accounts/{organization_id}": ADMINS,
        "GET /api/v1/billing/accounts/{organization_id}/plans": BILLING_READERS,
        "POST /api/v1/billing/accounts/{organization_id}/plans": ADMINS,
        "GET /api/v1/billing/accounts/{organization_id}/blocks": BILLING_READERS,
        "POST /api/v1/billing/accounts/{organization_id}/blocks": ADMINS,
        "GET /api/v1/billing/accounts/{organization_id}/usage": BILLING_READERS,
        "GET /api/v1/billing/accounts/{organization_id}/usage.csv": BILLING_READERS,
        "GET /api/v1/billing/accounts/{organization_id}/ledger": BILLING_READERS,
        "GET /api/v1/billing/invoices": BILLING_READERS | {"portal of B"},
        "GET /api/v1/billing/invoices/{invoice_id}": BILLING_READERS,
        "GET /api/v1/billing/invoices/{invoice_id}/pdf": BILLING_READERS,
        "POST /api/v1/billing/invoices/{invoice_id}/mark-paid": ADMINS,
        "POST /api/v1/billing/invoices/{invoice_id}/void": ADMINS,
        "POST /api/v1/billing/periods/close": ADMINS,
        "GET /api/v1/billing/notices": BILLING_READERS | {"portal of B"},
        "GET /api/v1/billing/tickets/{ticket_id}/close-preview": BILLING_READERS,
    },
}

# A's private words: no caller outside A's ticket may read them anywhere.
SECRET_SUBJECT = "Secret printer of organization A"
SECRET_EMAIL = "owner@a.test"


def callers(ids: dict[str, str], org_b: str) -> dict[str, Principal]:
    organization_a = ids["organization_id"]
    every: dict[str, Principal] = {
        "admin": auth.admin(),
        "agent": auth.agent(UUID(ids["agent_id"])),
        "service": auth.service("matrix"),
        "customer": auth.customer(organization_a, UUID(ids["contact_id"])),
        "colleague": auth.customer(organization_a),
        "customer of B": auth.customer(org_b),
        "portal of B": auth.portal(org_b),
    }
    for scope in PORTAL_SCOPES_WALKED:
        every[f"portal {scope}"] = auth.portal(organization_a, scopes=(scope,))
    return every


async def _organization_a_in_ticket_api(client: httpx.AsyncClient) -> tuple[dict[str, str], str]:
    admin = auth.bearer(auth.admin())
    agent = (
        await client.post("/api/v1/agents", json={"email": "a@helpdesk.test", "name": "A"}, headers=admin)
    ).json()
    org_a, org_b = [
        (
            await client.post(
                "/api/v1/organizations",
                json={"name": name, "support_tier": "hourly", "email_domains": [f"{name.lower()}.test"]},
                headers=admin,
            )
        ).json()
        for name in ("A", "B")
    ]
    ticket = (
        await client.post(
            "/api/v1/tickets",
            json={
                "contact": {"email": SECRET_EMAIL},
                "subject": SECRET_SUBJECT,
                "description": "d",
                "urgency": "low",
            },
            headers=admin,
        )
    ).json()
    agent_headers = auth.bearer(auth.agent(agent["id"]))
    entry = (
        await client.post(
            f"/api/v1/tickets/{ticket['id']}/time-entries", json={"minutes": 5}, headers=agent_headers
        )
    ).json()
    portal_client = (
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
        "client_uuid": portal_client["client"]["id"],
        "number": ticket["number"],
    }
    return ids, org_b["id"]


async def test_every_route_admits_exactly_its_callers(
    sqlite_template: Path, redis_url: str, tmp_path: Path
) -> None:
    apps: dict[str, FastAPI] = {}
    async with contextlib.AsyncExitStack() as stack:
        clients: dict[str, httpx.AsyncClient] = {}
        for service in Service:
            module = importlib.import_module(f"services.{service.value}.app")
            settings = type(service_settings(service))(
                database_url=sqlite_copy(sqlite_template, service, tmp_path),
                redis_url=redis_url,
                var_dir=tmp_path / service.value,
            )
            app = module.create_app(settings)
            await stack.enter_async_context(app.router.lifespan_context(app))
            clients[service.value] = await stack.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc.test")
            )
            apps[service.value] = app
        ids, org_b = await _organization_a_in_ticket_api(clients["ticket_api"])
        who = callers(ids, org_b)
        wrong: list[str] = []
        cells = 0
        for name, app in apps.items():
            routes = operations(app)
            unlisted = {f"{m} {p}" for m, p in routes} - POLICY[name].keys()
            assert not unlisted, f"{name}: routes with no access policy: {sorted(unlisted)}"
            for method, path in routes:
                admitted = POLICY[name][f"{method} {path}"]
                # Callers the route refuses first, so that an admitted one's change comes last.
                for caller in sorted(who, key=lambda c: c in admitted):
                    cells += 1
                    response = await clients[name].request(  # a fresh token: a logout revokes one
                        method,
                        concrete(path, ids),
                        headers=auth.bearer(who[caller]),
                        json=example_body(app, method, path),
                    )
                    status = response.status_code
                    if status == 403 and response.json()["type"].endswith(":field-not-allowed"):
                        status = 422  # admitted; the example names a field this caller may not set
                    if caller in admitted and status in (401, 403):
                        wrong.append(f"{caller}: {method} {path} → {status}, expected admitted")
                    elif caller not in admitted and status not in (403, 404):
                        wrong.append(f"{caller}: {method} {path} → {status}, expected 403/404")
                    elif status >= 400 and response.headers["content-type"] != "application/problem+json":
                        wrong.append(f"{caller}: {method} {path} → {status} not problem+json")
                    if caller in OUTSIDERS and (
                        SECRET_SUBJECT in response.text or SECRET_EMAIL in response.text
                    ):
                        wrong.append(f"{caller}: {method} {path} → {status} shows A's private ticket")
        assert not wrong, "\n".join(wrong)
        assert cells > 1000
