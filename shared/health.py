"""``/healthz`` (the process is alive) and ``/readyz`` (its database and Redis answer)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from shared.problems import problem_responses, unavailable_response

Check = Callable[[Request], Awaitable[None]]

CHECK_TIMEOUT_SECONDS = 2.0


def health_router(checks: Mapping[str, Check]) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/readyz",
        summary="Readiness: the database and Redis answer",
        description="200 when every check passes, else 503 problem+json naming the failing ones.",
        responses=problem_responses(503),
    )
    async def readyz(request: Request) -> JSONResponse:
        results: dict[str, str] = {}
        for name, check in checks.items():
            try:
                await asyncio.wait_for(check(request), CHECK_TIMEOUT_SECONDS)
                results[name] = "ok"
            except Exception as error:
                results[name] = f"failing: {type(error).__name__}"
        if all(value == "ok" for value in results.values()):
            return JSONResponse({"status": "ok", "checks": results})
        failing = "; ".join(f"{name}: {value}" for name, value in results.items() if value != "ok")
        return unavailable_response(request.url.path, failing, slug="not-ready", checks=results)

    return router
