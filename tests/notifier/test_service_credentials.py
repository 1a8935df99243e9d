"""The notifier fetches invoice PDFs from billing with its own OAuth client: a token issued by
a real ticket_api (in-process), renewed when billing refuses it."""

from __future__ import annotations

from pathlib import Path
from uuid import uuid4

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from services.notifier.delivery.email import fetch_invoice_pdf
from services.notifier.runtime import billing_client
from services.ticket_api.app import create_app
from services.ticket_api.settings import Settings as TicketApiSettings
from shared.events import Service
from shared.principal import PrincipalKind
from shared.service_auth import ClientCredentialsAuth
from shared.tokens import InvalidToken
from shared.transient import TransientError
from tests import auth
from tests.conftest import sqlite_copy
from tests.notifier.conftest import Env, make_settings

PDF = b"%PDF-1.4 invoice"


def billing_stub(env: Env) -> tuple[FastAPI, list[str]]:
    """billing's invoice route as far as auth goes: verifies the bearer token like every
    service does; refuses the first token it sees (as after a key rotation)."""
    app, tokens = FastAPI(), []

    @app.get("/api/v1/billing/invoices/{invoice_id}/pdf")
    async def invoice_pdf(invoice_id: str, request: Request) -> Response:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        try:
            principal = await env.runtime.verifier.verify(token)
        except InvalidToken:
            return Response(status_code=401)
        tokens.append(token)
        if len(tokens) == 1 or principal.kind is not PrincipalKind.SERVICE:
            return Response(status_code=401)
        assert principal.name == "service:notifier"
        return Response(PDF, media_type="application/pdf")

    return app, tokens


async def test_invoice_pdfs_are_fetched_with_the_notifiers_own_renewed_token(
    env: Env, sqlite_template: Path, redis_url: str, tmp_path: Path
) -> None:
    ticket_api: FastAPI = create_app(
        TicketApiSettings(
            database_url=sqlite_copy(sqlite_template, Service.TICKET_API, tmp_path),
            redis_url=redis_url,
            var_dir=tmp_path,
        )
    )
    stub, tokens = billing_stub(env)
    async with (
        ticket_api.router.lifespan_context(ticket_api),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=ticket_api), base_url="http://ticket-api.test"
        ) as to_ticket_api,
    ):
        created = await to_ticket_api.post(
            "/api/v1/clients",
            json={"name": "service:notifier", "kind": "service", "scopes": []},
            headers=auth.bearer(auth.admin()),
        )
        assert created.status_code == 201, created.text
        credentials = created.json()["credentials"]
        settings = make_settings(
            env.settings.database_url,
            redis_url,
            ("127.0.0.1", 1),
            tmp_path,
            client_id=credentials["client_id"],
            client_secret=credentials["client_secret"],
            ticket_api_url="http://ticket-api.test",
            billing_base_url="http://billing.test",
        )
        await env.notifier.billing_client.aclose()
        env.notifier.billing_client = billing_client(settings, transport=httpx.ASGITransport(app=stub))
        service_auth = env.notifier.billing_client.auth
        assert isinstance(service_auth, ClientCredentialsAuth)
        assert service_auth.token_url == "http://ticket-api.test/api/v1/oauth/token"
        service_auth.http = to_ticket_api  # ticket_api is in-process here

        invoice_id = str(uuid4())
        url = f"http://127.0.0.1:8080/api/v1/billing/invoices/{invoice_id}/pdf"  # the event's pdf_url
        attachment = await fetch_invoice_pdf(env.notifier, url, invoice_id, "INV-1.pdf")
        assert attachment.content == PDF
        assert len(tokens) == 2 and tokens[0] != tokens[1], "refused once, renewed, sent again"

    # Without credentials billing refuses: a transient failure (configuration gets fixed).
    await env.notifier.billing_client.aclose()
    env.notifier.billing_client = billing_client(env.settings, transport=httpx.ASGITransport(app=stub))
    assert env.notifier.billing_client.auth is None and env.settings.client_id == ""
    with pytest.raises(TransientError, match="401"):
        invoice_id = str(uuid4())
        await fetch_invoice_pdf(env.notifier, f"/api/v1/billing/invoices/{invoice_id}/pdf", invoice_id, None)
