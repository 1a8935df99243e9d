"""Smoke test of the running system on PostgreSQL: a ticket goes in through the gateway, comes
back by id and number, carries the gateway's request id into the audit trail, and its event
reaches the workers of every subscribing service."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from redis import Redis

from deploy.local.stack import Stack, start_stack
from shared.events import ROUTES, EventType
from shared.queue import queue_name
from tests.conftest import PG_SERVER

pytestmark = pytest.mark.stack

DATABASE = f"helpdesk_smoke_{os.getpid()}"


async def _recreate_database(drop_only: bool = False) -> None:
    admin = await asyncpg.connect(f"{PG_SERVER}/postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        if not drop_only:
            await admin.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await admin.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    asyncio.run(_recreate_database())
    url = PG_SERVER.replace("postgresql://", "postgresql+asyncpg://") + f"/{DATABASE}"
    env = {f"{service}_DATABASE_URL": url for service in ("TICKET_API", "TRIAGE", "NOTIFIER", "BILLING")}
    var_dir: Path = tmp_path_factory.mktemp("smoke") / "var"
    try:
        with start_stack(env=env, var_dir=var_dir) as running:
            yield running
    finally:
        asyncio.run(_recreate_database(drop_only=True))


def _sign_in(client: httpx.Client, stack: Stack) -> tuple[dict[str, str], dict[str, str]]:
    """The portal's token by OAuth client credentials, the admin's by password sign-in."""
    credentials = stack.credentials()
    portal, admin = credentials["portal"], credentials["admin"]
    assert isinstance(portal, dict) and isinstance(admin, dict)
    token = client.post(
        "/api/v1/oauth/token",
        data={"grant_type": "client_credentials", "scope": "tickets:read tickets:write"},
        auth=(portal["client_id"], portal["client_secret"]),
    )
    assert token.status_code == 200, token.text
    assert token.json()["token_type"] == "Bearer"
    login = client.post("/api/v1/auth/login", json={"email": admin["email"], "password": admin["password"]})
    assert login.status_code == 200, login.text
    return (
        {"Authorization": f"Bearer {token.json()['access_token']}"},
        {"Authorization": f"Bearer {login.json()['access_token']}"},
    )


def test_a_ticket_through_the_gateway_reaches_every_subscriber(stack: Stack) -> None:
    body = {
        "contact": {"email": "jane@demo-customer.test", "name": "Jane"},
        "subject": "Printer offline",
        "description": "It stopped this morning. Urgent!",
        "urgency": "high",
    }
    with httpx.Client(base_url=stack.gateway_url, timeout=10) as client:
        assert client.get("/healthz").status_code == 200
        portal, admin = _sign_in(client, stack)

        headers = {**portal, "Idempotency-Key": "smoke-1", "X-Request-ID": "smoke-request-1"}
        created = client.post("/api/v1/tickets", json=body, headers=headers)
        assert created.status_code == 201, created.text
        assert created.headers["x-request-id"] == "smoke-request-1"
        ticket = created.json()
        replay = client.post("/api/v1/tickets", json=body, headers={**portal, "Idempotency-Key": "smoke-1"})
        assert replay.json()["id"] == ticket["id"]
        assert replay.headers["idempotent-replayed"] == "true"

        by_number = client.get(f"/api/v1/tickets/by-number/{ticket['number']}", headers=portal)
        assert by_number.json()["id"] == ticket["id"]
        trail = client.get(f"/api/v1/tickets/{ticket['id']}/audit", headers=admin).json()
        # Triage may already have added its own entry (actor service:triage, its own request id).
        assert (trail[0]["action"], trail[0]["request_id"]) == ("created", "smoke-request-1")

        anonymous = client.get("/api/v1/tickets")
        assert anonymous.status_code == 401
        assert anonymous.headers["content-type"] == "application/problem+json"
        assert anonymous.headers["x-request-id"]
        # Paths of the other services are routed to them, not to ticket_api.
        assert client.get("/api/v1/billing/nothing-yet").json()["instance"] == "/api/v1/billing/nothing-yet"

    # The ticket.created event was published and each subscriber's worker ran its job.
    redis = Redis.from_url(stack.redis_url)
    try:
        deadline = time.monotonic() + 15
        event_key = None
        while time.monotonic() < deadline and event_key is None:
            event_key = next(
                iter(
                    redis.scan_iter(match=f"arq:result:*:{queue_name(ROUTES[EventType.TICKET_CREATED][0])}")
                ),
                None,
            )
            time.sleep(0.1)
        assert event_key is not None, "triage never ran the ticket.created job"
        event_id = event_key.decode().split(":")[2]
        for service in ROUTES[EventType.TICKET_CREATED]:
            key = f"arq:result:{event_id}:{queue_name(service)}"
            while time.monotonic() < deadline and not redis.exists(key):
                time.sleep(0.1)
            assert redis.exists(key), f"{service.value} never ran the ticket.created job"
    finally:
        redis.close()
