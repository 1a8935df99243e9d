"""RFC 9457 problem details: every 4xx/5xx answer of every service has this shape.

Raise :class:`Problem` (or a subclass declared in a service's ``errors.py``) from any layer;
the handlers installed by :func:`install_problem_handlers` turn it, validation errors, unknown
routes and unexpected exceptions into ``application/problem+json``.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.logging import request_id_var

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "urn:helpdesk:problem:"


class ProblemDetail(BaseModel):
    """The problem document (RFC 9457), as the OpenAPI shows it."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "example": {
                "type": f"{TYPE_BASE}validation-error",
                "title": "Request is not valid",
                "status": 422,
                "detail": "body.urgency: Input should be 'low', 'medium', 'high' or 'critical'",
                "errors": [{"location": "body.urgency", "message": "Input should be …"}],
                "request_id": "6f1c…",
            }
        },
    )

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    request_id: str | None = None


class Problem(Exception):
    """An error the caller can act on. Subclasses set ``status``, ``slug`` and ``title``."""

    status: int = 400
    slug: str = "bad-request"
    title: str = "Bad request"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers
        self.extra = extra


class NotFound(Problem):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(Problem):
    status, slug, title = 409, "conflict", "Conflict"


class Unprocessable(Problem):
    status, slug, title = 422, "unprocessable", "Request cannot be processed"


class Unauthorized(Problem):
    status, slug, title = 401, "unauthorized", "Authentication required"


class Forbidden(Problem):
    status, slug, title = 403, "forbidden", "Not allowed"


def problem_response(
    status: int,
    slug: str,
    title: str,
    detail: str | None,
    *,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {"type": TYPE_BASE + slug, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body["request_id"] = request_id_var.get()
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` entry declaring a route's problem answers in the OpenAPI."""
    return {
        status: {
            "model": ProblemDetail,
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_MEDIA_TYPE: {}},
        }
        for status in statuses
    }


def _location(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


def internal_error_response(path: str) -> JSONResponse:
    """The 500 answer: says nothing of the internals, gives the request id to quote."""
    return problem_response(
        500,
        "internal-error",
        "Internal server error",
        "Something went wrong on our side; it has been logged. Quote the request id when asking.",
        instance=path,
    )


def _unsupported_media_type(request: Request, error: RequestValidationError) -> JSONResponse | None:
    """415, not 422, when a JSON body was expected and the request sent another kind (a form,
    say): the body was never read as JSON, so its fields cannot be named."""
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if not content_type or content_type == "application/json" or content_type.endswith("+json"):
        return None
    at_body_root = any(tuple(item["loc"]) == ("body",) for item in error.errors())
    if not at_body_root:
        return None
    return problem_response(
        415,
        "unsupported-media-type",
        "Unsupported Media Type",
        f"This route takes a JSON body (Content-Type: application/json), not {content_type}.",
        instance=request.url.path,
        headers={"Accept-Post": "application/json"},
    )


def document_common_problems(openapi: dict[str, Any]) -> None:
    """Add to each operation of an OpenAPI document the problems every route of its shape may
    answer, so the document names every status a client can get: 400 for a bad ``cursor``,
    415 for a body that is not JSON where JSON is taken, 422 for any parameter or body."""
    for item in openapi.get("paths", {}).values():
        for operation in item.values():
            responses = operation.setdefault("responses", {})
            parameters = operation.get("parameters", [])
            statuses = []
            if any(p.get("name") == "cursor" and p.get("in") == "query" for p in parameters):
                statuses.append(400)
            if "application/json" in operation.get("requestBody", {}).get("content", {}):
                statuses.append(415)
            if parameters or "requestBody" in operation:
                statuses.append(422)
            for status in statuses:
                responses.setdefault(
                    str(status),
                    {
                        "description": HTTPStatus(status).phrase,
                        "content": {
                            PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemDetail"}}
                        },
                    },
                )


# How long a client should wait before retrying while the database or Redis is unreachable (a
# restart takes seconds).
RETRY_AFTER_SECONDS = 5


def unavailable_response(
    path: str, detail: str, *, slug: str = "service-unavailable", **extra: Any
) -> JSONResponse:
    """The 503 answer while something this service needs (the database, Redis) does not answer:
    nothing was done, the same request may be sent again after ``Retry-After`` seconds."""
    return problem_response(
        503,
        slug,
        "Service temporarily unavailable",
        detail,
        instance=path,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        **extra,
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Problems, validation errors and HTTP errors; unexpected exceptions are answered by
    ``shared.web.RequestIdMiddleware`` so the 500 still carries the request id."""

    async def on_problem(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, Problem)
        return problem_response(
            error.status,
            error.slug,
            error.title,
            error.detail,
            instance=request.url.path,
            headers=error.headers,
            **error.extra,
        )

    async def on_validation(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        if unsupported := _unsupported_media_type(request, error):
            return unsupported
        errors = [
            {"location": _location(item["loc"]), "message": item["msg"], "type": item["type"]}
            for item in error.errors()
        ]
        detail = "; ".join(f"{e['location']}: {e['message']}" for e in errors[:5])
        return problem_response(
            422, "validation-error", "Request is not valid", detail, instance=request.url.path, errors=errors
        )

    async def on_http(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, StarletteHTTPException)
        phrase = HTTPStatus(error.status_code).phrase
        detail = error.detail if isinstance(error.detail, str) and error.detail != phrase else None
        if error.status_code == 404 and detail is None:
            detail = f"No route {request.method} {request.url.path}"
        return problem_response(
            error.status_code,
            phrase.lower().replace(" ", "-"),
            phrase,
            detail,
            instance=request.url.path,
            headers=getattr(error, "headers", None),
        )

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
