"""The FastAPI application shell every service shares: request ids, problems, health, logs."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Response
from sqlalchemy import Table
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.gc_tuning import tune
from shared.health import Check, health_router
from shared.ids import new_id
from shared.logging import configure_logging, request_id_var
from shared.metrics import MetricsMiddleware, metrics_router
from shared.problems import (
    document_common_problems,
    install_problem_handlers,
    internal_error_response,
    unavailable_response,
)
from shared.runtime import READINESS_CHECKS, Runtime
from shared.settings import ServiceSettings
from shared.text_guard import UnstorableTextGuard
from shared.transient import is_transient

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "x-request-id"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def dump_json(document: Any) -> bytes:
    """JSON as pydantic writes it (UTC as ``Z``, enums as their values), by orjson. Other types
    are written as ``str()`` does (asyncpg's own UUIDs, decimals)."""
    return orjson.dumps(document, default=str, option=orjson.OPT_UTC_Z)


def json_response(
    document: Any, *, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """An answer for hot routes that build plain values instead of models: FastAPI then neither
    validates nor serializes it again. The route keeps its ``response_model`` for the docs."""
    return Response(
        dump_json(document), status_code=status_code, media_type="application/json", headers=headers
    )


class RequestIdMiddleware:
    """Takes a sane incoming ``X-Request-ID`` (the gateway sets one) or makes one, binds it
    for logs and outgoing calls, and echoes it on the response. Unexpected exceptions are
    logged and answered here as a 500 problem carrying that id. Pure ASGI: no per-request
    task overhead."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next(
            (value.decode("latin-1") for key, value in scope["headers"] if key == REQUEST_ID_HEADER.encode()),
            "",
        )
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else new_id().hex
        token = request_id_var.set(request_id)

        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [
                    h for h in message.get("headers", []) if h[0].lower() != REQUEST_ID_HEADER.encode()
                ]
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as error:
            path = scope.get("path", "")
            if is_transient(error):
                log.warning("unavailable on %s %s: %r", scope.get("method"), path, error)
                if started:
                    raise
                detail = (
                    "A service this request needs does not answer just now; nothing was done. Retry later."
                )
                await unavailable_response(path, detail)(scope, receive, send_with_id)
                return
            log.exception("unhandled error on %s %s", scope.get("method"), path)
            if started:
                raise
            await internal_error_response(path)(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)


Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[Any]]


def runtime_lifespan(
    settings: ServiceSettings,
    outbox: Table,
    *,
    on_start: Callable[[FastAPI, Runtime], Awaitable[None]] | None = None,
) -> Lifespan:
    """Configure logs, open the service's runtime on start-up (then ``on_start``), close it on shutdown."""
    configure_logging(settings.service_name, settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Up even while Redis is down: its requests answer 503 meanwhile, never a refused connection.
        app.state.runtime = await Runtime.open(settings, outbox, wait_for_redis=False)
        if on_start is not None:
            await on_start(app, app.state.runtime)
        if settings.env != "test":
            # A served process (uvicorn worker): its start-up objects out of every collection.
            # Not in tests, where many apps come and go in one process.
            tune()
        try:
            yield
        finally:
            await app.state.runtime.close()

    return lifespan


def _document_common_problems_in(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document_common_problems(generate())
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_service_app(
    *,
    title: str,
    description: str,
    version: str,
    lifespan: Lifespan,
    routers: Sequence[APIRouter],
    readiness_checks: Mapping[str, Check] = READINESS_CHECKS,
    openapi_tags: list[dict[str, Any]] | None = None,
) -> FastAPI:
    app = FastAPI(
        title=title,
        description=description,
        version=version,
        lifespan=lifespan,
        openapi_tags=openapi_tags,
    )
    install_problem_handlers(app)
    _document_common_problems_in(app)
    app.add_middleware(UnstorableTextGuard)
    app.add_middleware(MetricsMiddleware)  # inside the ids: an exception counts as the 500/503 it becomes
    app.add_middleware(RequestIdMiddleware)  # added last: the outermost, so every answer has an id
    app.include_router(health_router(readiness_checks))
    app.include_router(metrics_router())  # GET /metrics, not in the OpenAPI (the gateway never routes it)
    for router in routers:
        app.include_router(router)
    return app
