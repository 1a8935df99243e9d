"""ticket_api while Redis or the database does not answer: the process starts and stays up, and
every request answers 503 problem+json with Retry-After (never a 500, never a refused connection)."""

from __future__ import annotations

from pathlib import Path

import httpx

from deploy.local.probes import free_ports
from services.ticket_api.app import create_app
from services.ticket_api.settings import Settings
from tests import auth
from tests.auth import bearer
from tests.ticket_api.conftest import new_ticket


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) > 0
    assert response.json()["status"] == 503


async def _requests(settings: Settings) -> list[httpx.Response]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ticket-api.test") as client:
            portal = bearer(auth.portal("0b6a1a4e-1f0c-4a57-9d9e-3f1f2f3f4f5f"))
            return [
                await client.get("/readyz"),
                await client.post(
                    "/api/v1/tickets", json=new_ticket(), headers={**portal, "Idempotency-Key": "k-1"}
                ),
                await client.get("/api/v1/tickets", headers=bearer(auth.admin())),
            ]


async def test_redis_down_answers_503_and_the_process_starts(postgres_url: str, tmp_path: Path) -> None:
    (closed,) = free_ports(1)
    settings = Settings(
        database_url=postgres_url, redis_url=f"redis://127.0.0.1:{closed}/0", var_dir=tmp_path, env="test"
    )
    for response in await _requests(settings):
        assert_unavailable(response)


async def test_the_database_down_answers_503(redis_url: str, tmp_path: Path) -> None:
    (closed,) = free_ports(1)
    settings = Settings(
        database_url=f"postgresql+asyncpg://postgres@127.0.0.1:{closed}/helpdesk",
        redis_url=redis_url,
        var_dir=tmp_path,
        env="test",
    )
    ready, create, listing = await _requests(settings)
    assert_unavailable(ready)
    assert ready.json()["checks"]["database"].startswith("failing")
    assert_unavailable(create)
    assert_unavailable(listing)
