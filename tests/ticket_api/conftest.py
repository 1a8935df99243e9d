from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy import select

from services.ticket_api.app import create_app
from services.ticket_api.db import outbox
from services.ticket_api.settings import Settings
from shared.events import Service
from shared.runtime import Runtime
from tests import auth
from tests.auth import bearer
from tests.conftest import sqlite_copy, truncate_schema


@dataclass
class Actors:
    """An HTTP client on ticket_api and the callers of the authorization matrix."""

    client: httpx.AsyncClient
    app: FastAPI
    admin: dict[str, str]
    agent: dict[str, str]
    agent_id: UUID
    portal_a: dict[str, str]
    portal_b: dict[str, str]
    org_a: dict[str, Any]
    org_b: dict[str, Any]

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.app.state.runtime
        return runtime

    async def outbox_types(self) -> list[str]:
        async with self.runtime.sessions() as session:
            rows = await session.execute(select(outbox.c.type).order_by(outbox.c.created_at))
            return [row.type for row in rows]


@pytest.fixture(params=["postgres", "sqlite"])
async def database_url(
    request: pytest.FixtureRequest, postgres_url: str, sqlite_template: Path, tmp_path: Path
) -> str:
    """Each ticket_api test runs on PostgreSQL (truncated) and on SQLite (a fresh copy)."""
    if request.param == "postgres":
        await truncate_schema(postgres_url, "ticket_api")
        return postgres_url
    return sqlite_copy(sqlite_template, Service.TICKET_API, tmp_path)


@pytest.fixture
async def api(database_url: str, redis_url: str, redis: Redis, tmp_path: Path) -> AsyncIterator[Actors]:
    settings = Settings(database_url=database_url, redis_url=redis_url, var_dir=tmp_path, env="test")
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ticket-api.test") as client:
            admin = bearer(auth.admin())
            response = await client.post(
                "/api/v1/agents",
                json={"email": "alice@helpdesk.test", "name": "Alice", "skills": ["printers"]},
                headers=admin,
            )
            assert response.status_code == 201, response.text
            agent_id = UUID(response.json()["id"])
            orgs = []
            for name, domain in (("Acme", "acme.test"), ("Globex", "globex.test")):
                response = await client.post(
                    "/api/v1/organizations",
                    json={"name": name, "support_tier": "hourly", "email_domains": [domain]},
                    headers=admin,
                )
                assert response.status_code == 201, response.text
                orgs.append(response.json())
            yield Actors(
                client=client,
                app=app,
                admin=admin,
                agent=bearer(auth.agent(agent_id)),
                agent_id=agent_id,
                portal_a=bearer(auth.portal(orgs[0]["id"])),
                portal_b=bearer(auth.portal(orgs[1]["id"])),
                org_a=orgs[0],
                org_b=orgs[1],
            )
        await app.state.runtime.outbox.drain()


def new_ticket(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "contact": {"email": "jane@acme.test", "name": "Jane Doe"},
        "subject": "Printer offline",
        "description": "The printer stopped answering. Urgent!",
        "urgency": "high",
    }
    body.update(overrides)
    return body


__all__ = ["Actors", "bearer", "new_ticket"]
