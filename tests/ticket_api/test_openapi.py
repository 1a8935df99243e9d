"""The OpenAPI a portal integrates against: every body has an example, every route declares
its problem answers, and every route but the probes requires a bearer token."""

from __future__ import annotations

from typing import Any

import pytest

from services.ticket_api.app import create_app
from services.ticket_api.settings import Settings


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return create_app(Settings(env="test")).openapi()


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, item in spec["paths"].items() for method, op in item.items()]


def test_every_request_body_has_an_example(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    for path, method, op in operations(spec):
        if "requestBody" not in op:
            continue
        content = op["requestBody"]["content"]
        if "application/json" in content:
            ref = content["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
            assert schemas[ref].get("examples"), f"{method.upper()} {path}: {ref} has no example"
        elif "message/rfc822" in content:  # a raw email (inbound): the example is a message
            assert content["message/rfc822"].get("example"), f"{method.upper()} {path}: no example message"
        else:  # an OAuth form: the fields a client must send carry examples
            ref = content["application/x-www-form-urlencoded"]["schema"]["$ref"].rsplit("/", 1)[-1]
            for field in schemas[ref]["required"]:
                assert schemas[ref]["properties"][field].get("examples"), f"{path}: form field {field}"


# Routes anyone may call: getting a token, and the keys that verify tokens.
PUBLIC = {
    "/api/v1/oauth/token",
    "/api/v1/auth/login",
    "/api/v1/auth/refresh",
    "/api/v1/auth/session/refresh",
    "/api/v1/auth/magic-link",
    "/api/v1/auth/magic-link/redeem",
    "/api/v1/.well-known/jwks.json",
    "/api/v1/feedback/{token}",
    "/api/v1/ticket-status/{token}",
    "/api/v1/ticket-status/{token}/appointment",
    "/api/v1/ticket-status/{token}/messages",
}
# Signing in to the browser session is public; signing out of it (DELETE, same path) is not.
PUBLIC_OPERATIONS = {("post", "/api/v1/auth/session")}


def test_every_api_route_declares_problems_and_needs_a_token(spec: dict[str, Any]) -> None:
    for path, method, op in operations(spec):
        if not path.startswith("/api/v1/") or path in PUBLIC or (method, path) in PUBLIC_OPERATIONS:
            continue
        assert "401" in op["responses"], f"{method.upper()} {path} does not declare 401"
        assert "application/problem+json" in op["responses"]["401"]["content"]
        assert op.get("security") == [{"HTTPBearer": []}], f"{method.upper()} {path} is not authenticated"


def test_ticket_creation_documents_idempotency_and_its_answer(spec: dict[str, Any]) -> None:
    create = spec["paths"]["/api/v1/tickets"]["post"]
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in create["parameters"])
    assert create["responses"]["201"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "TicketPublic"
    )
