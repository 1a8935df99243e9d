"""The application shell every service shares: problem+json, request ids, health."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request
from pydantic import BaseModel, ConfigDict
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from deploy.local.probes import free_ports
from shared.logging import request_id_var
from shared.problems import Conflict
from shared.web import create_service_app

router = APIRouter()


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    count: int


@router.post("/things")
async def make_thing(body: Body) -> dict[str, int]:
    return {"count": body.count}


@router.get("/conflict")
async def conflict() -> None:
    raise Conflict("Already taken.", holder="someone")


@router.get("/boom")
async def boom() -> None:
    raise RuntimeError("secret internals")


(CLOSED_PORT,) = free_ports(1)


@router.get("/database")
async def database_down() -> None:
    engine = create_async_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{CLOSED_PORT}/x")
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    finally:
        await engine.dispose()


@router.get("/redis")
async def redis_down() -> None:
    client = Redis.from_url(f"redis://127.0.0.1:{CLOSED_PORT}/0")
    try:
        await client.ping()
    finally:
        await client.aclose()


@router.get("/request-id")
async def request_id() -> dict[str, str | None]:
    return {"request_id": request_id_var.get()}


async def failing_check(request: Request) -> None:
    raise ConnectionError("down")


async def passing_check(request: Request) -> None:
    return None


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = create_service_app(
        title="t",
        description="d",
        version="1",
        lifespan=lifespan,
        routers=[router],
        readiness_checks={"database": passing_check, "redis": failing_check},
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc.test") as client:
        yield client


async def test_domain_errors_become_problem_documents(client: httpx.AsyncClient) -> None:
    response = await client.get("/conflict")
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() | {"request_id": None} == {
        "type": "urn:helpdesk:problem:conflict",
        "title": "Conflict",
        "status": 409,
        "detail": "Already taken.",
        "instance": "/conflict",
        "holder": "someone",
        "request_id": None,
    }


async def test_validation_errors_list_each_field(client: httpx.AsyncClient) -> None:
    response = await client.post("/things", json={"count": "many", "extra": 1})
    assert response.status_code == 422
    problem = response.json()
    assert [e["location"] for e in problem["errors"]] == ["body.count", "body.extra"]
    assert "body.count" in problem["detail"]


async def test_unknown_routes_and_methods_are_problems(client: httpx.AsyncClient) -> None:
    missing = await client.get("/nowhere")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    wrong_method = await client.delete("/things")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["title"] == "Method Not Allowed"


async def test_unexpected_errors_hide_internals(client: httpx.AsyncClient) -> None:
    response = await client.get("/boom")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert "secret" not in response.text
    assert response.json()["request_id"] == response.headers["x-request-id"]


async def test_request_id_is_taken_from_the_gateway_or_made(client: httpx.AsyncClient) -> None:
    given = await client.get("/request-id", headers={"X-Request-ID": "gw-123"})
    assert given.json() == {"request_id": "gw-123"}
    assert given.headers["x-request-id"] == "gw-123"
    hostile = await client.get("/request-id", headers={"X-Request-ID": "bad id\twith spaces"})
    assert hostile.json()["request_id"] != "bad id\twith spaces"
    assert len(hostile.headers["x-request-id"]) == 32


async def test_readiness_reports_each_dependency(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert ready.headers["content-type"] == "application/problem+json"
    assert ready.headers["retry-after"] == "5"
    assert ready.json() | {"request_id": None} == {
        "type": "urn:helpdesk:problem:not-ready",
        "title": "Service temporarily unavailable",
        "status": 503,
        "detail": "redis: failing: ConnectionError",
        "instance": "/readyz",
        "checks": {"database": "ok", "redis": "failing: ConnectionError"},
        "request_id": None,
    }


async def test_a_form_where_json_is_expected_is_415_not_422(client: httpx.AsyncClient) -> None:
    form = await client.post("/things", data={"count": "1"})
    assert form.status_code == 415
    assert form.headers["content-type"] == "application/problem+json"
    assert "application/json" in form.json()["detail"]
    # A JSON body with a wrong field is still a 422 naming it.
    wrong = await client.post("/things", json={"count": "many"})
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["location"] == "body.count"


@pytest.mark.parametrize("path", ["/database", "/redis"])
async def test_the_database_or_redis_down_is_a_503_to_retry_later(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "5"
    body = response.json()
    assert body["type"] == "urn:helpdesk:problem:service-unavailable"
    assert body["request_id"] == response.headers["x-request-id"]
