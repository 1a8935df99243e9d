"""A service calling another with its own client-credentials token, through ticket_api."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import FastAPI

from services.ticket_api.app import create_app
from services.ticket_api.settings import Settings
from shared.events import Service
from shared.service_auth import ClientCredentialsAuth
from tests import auth
from tests.conftest import sqlite_copy


async def test_a_service_gets_renews_and_uses_its_own_token(
    sqlite_template: Path, redis_url: str, tmp_path: Path
) -> None:
    settings = Settings(
        database_url=sqlite_copy(sqlite_template, Service.TICKET_API, tmp_path),
        redis_url=redis_url,
        var_dir=tmp_path,
    )
    app: FastAPI = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ticket-api.test") as client:
            created = await client.post(
                "/api/v1/clients",
                json={"name": "service:notifier", "kind": "service", "scopes": []},
                headers=auth.bearer(auth.admin()),
            )
            assert created.status_code == 201, created.text
            credentials = created.json()["credentials"]
            service_auth = ClientCredentialsAuth(
                token_url="http://ticket-api.test/api/v1/oauth/token",
                client_id=credentials["client_id"],
                client_secret=credentials["client_secret"],
                http=client,
            )
            response = await client.get("/api/v1/tickets", auth=service_auth)
            assert response.status_code == 200, response.text
            first = await service_auth.token()
            renewed = await service_auth.token(renew=True)
            assert first != renewed
            assert (await client.get("/api/v1/agents", auth=service_auth)).status_code == 200
