"""Text no database can store (NUL, lone surrogates) is refused with a 422 naming where it was:
the pure finders, then through real services on PostgreSQL and SQLite."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.ticket_api.app import create_app
from services.ticket_api.settings import Settings
from shared.events import Service
from shared.text_guard import storable, unstorable_in_form, unstorable_in_json, unstorable_in_target
from tests import auth
from tests.conftest import sqlite_copy


def test_nul_and_lone_surrogates_are_unstorable_and_everything_else_is() -> None:
    assert not storable("a\x00b")
    assert not storable("\ud800")
    assert storable("Grüße 😀 ³ \t\n")


@given(st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00")))
def test_json_of_storable_text_passes(text: str) -> None:
    assert unstorable_in_json(json.dumps({"subject": text, "tags": [text]}).encode()) is None


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (b'{"subject": "a\\u0000b"}', "body.subject"),
        (b'{"contact": {"name": "ok", "email": "x\\u0000@a.test"}}', "body.contact.email"),
        (b'{"skills": ["net", "x\\u0000"]}', "body.skills.1"),
        (b'{"name": "\\ud800"}', "body.name"),
        (b'{"a\\u0000": 1}', "body"),
    ],
)
def test_json_names_the_field(body: bytes, where: str) -> None:
    assert unstorable_in_json(body) == where


def test_a_surrogate_pair_is_a_character_not_a_problem() -> None:
    assert unstorable_in_json(b'{"subject": "\\ud83d\\ude00"}') is None


def test_form_and_query_and_path() -> None:
    assert unstorable_in_form(b"grant_type=client_credentials&client_id=a%00b") == "body.client_id"
    assert unstorable_in_form(b"client_id=abc&client_secret=%ED%A0%80") == "body.client_secret"
    assert unstorable_in_form(b"client_id=100%25") is None
    assert unstorable_in_target("/api/v1/agents", b"skill=x%00") == "query.skill"
    assert unstorable_in_target("/api/v1/tickets/by-number/\x00", b"") == "path"
    assert unstorable_in_target("/api/v1/agents", b"skill=%C2%B3") is None


@pytest.fixture(params=["postgres", "sqlite"])
async def api(
    request: pytest.FixtureRequest, postgres_url: str, sqlite_template: Path, redis_url: str, tmp_path: Path
) -> httpx.AsyncClient:
    url = (
        postgres_url
        if request.param == "postgres"
        else sqlite_copy(sqlite_template, Service.TICKET_API, tmp_path)
    )
    app = create_app(Settings(database_url=url, redis_url=redis_url, var_dir=tmp_path))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t.test") as client,
    ):
        yield client


async def test_services_answer_422_naming_the_field_and_store_nothing(api: httpx.AsyncClient) -> None:
    admin = auth.bearer(auth.admin())
    cases = [
        (
            "POST",
            "/api/v1/oauth/token",
            {
                "content": b"grant_type=client_credentials&client_id=a%00b",
                "headers": {"Content-Type": "application/x-www-form-urlencoded"},
            },
            "body.client_id",
        ),
        (
            "POST",
            "/api/v1/agents",
            {"json": {"email": "n@helpdesk.test", "name": "N", "skills": ["x\x00"]}, "headers": admin},
            "body.skills.0",
        ),
        ("GET", "/api/v1/agents?skill=x%00", {"headers": admin}, "query.skill"),
        ("GET", "/api/v1/tickets/by-number/%00", {"headers": admin}, "path"),
    ]
    for method, path, options, where in cases:
        response = await api.request(method, path, **options)  # type: ignore[arg-type]
        assert response.status_code == 422, (path, response.status_code, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["errors"][0]["location"] == where
        assert response.headers["x-request-id"]
    agents = await api.get("/api/v1/agents?skill=x", headers=admin)
    assert agents.status_code == 200 and agents.json()["items"] == []
    # A number in another script is not a ticket number (was a 500).
    response = await api.get("/api/v1/tickets/by-number/%C2%B3", headers=admin)
    assert response.status_code == 404 and response.headers["content-type"] == "application/problem+json"
