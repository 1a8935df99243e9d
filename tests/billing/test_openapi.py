"""billing's OpenAPI: every body has an example, every route declares its problem answers
and needs a bearer token."""

from __future__ import annotations

from typing import Any

import pytest

from services.billing.app import create_app
from services.billing.settings import Settings


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return create_app(Settings(env="test")).openapi()


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, item in spec["paths"].items() for method, op in item.items()]


def test_routes_live_under_the_billing_prefix(spec: dict[str, Any]) -> None:
    for path, _, _ in operations(spec):
        assert path.startswith("/api/v1/billing/") or path in ("/healthz", "/readyz"), path


def test_every_request_body_has_an_example(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    for path, method, op in operations(spec):
        if "requestBody" in op:
            schema = op["requestBody"]["content"]["application/json"]["schema"]
            refs = (
                [schema["$ref"]]
                if "$ref" in schema
                else [s["$ref"] for s in schema.get("anyOf", []) if "$ref" in s]
            )
            for ref in refs:
                name = ref.rsplit("/", 1)[-1]
                assert schemas[name].get("examples"), f"{method.upper()} {path}: {name} has no example"


def test_every_route_needs_a_token_and_declares_problems(spec: dict[str, Any]) -> None:
    for path, method, op in operations(spec):
        if not path.startswith("/api/"):
            continue
        assert op.get("security"), f"{method.upper()} {path} is not authenticated"
        assert "401" in op["responses"] and "422" in op["responses"], f"{method.upper()} {path}"
