"""Getting and ending access: OAuth2 client credentials, agent sign-in, refresh, logout, JWKS."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Form, Header, Request
from fastapi.responses import Response

from services.ticket_api import identity
from services.ticket_api.deps import CurrentCaller, SignIn, Uow, client_address
from services.ticket_api.models import (
    LoginRequest,
    LogoutRequest,
    PasswordChange,
    RefreshRequest,
    SignInLinkRedeem,
    SignInLinkRequest,
    TokenResponse,
)
from shared.logging import request_id_var
from shared.problems import Unprocessable, problem_responses

router = APIRouter(tags=["authentication"])

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    if not authorization or not authorization.lower().startswith("basic "):
        return None
    try:
        client_id, _, secret = base64.b64decode(authorization[6:], validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return client_id, secret


def _token_answer(body: TokenResponse) -> Response:
    return Response(body.model_dump_json(exclude_none=True), media_type="application/json", headers=NO_STORE)


@router.post(
    "/oauth/token",
    responses={200: {"model": TokenResponse}, **problem_responses(400, 401, 422, 429)},
    summary="Get an access token (OAuth 2.0 client credentials)",
)
async def token(
    uow: Uow,
    sign_in: SignIn,
    address: Annotated[str, Depends(client_address)],
    grant_type: Annotated[str, Form(examples=["client_credentials"])],
    client_id: Annotated[str | None, Form(max_length=64)] = None,
    client_secret: Annotated[str | None, Form(max_length=200)] = None,
    scope: Annotated[str | None, Form(max_length=500, examples=["tickets:read tickets:write"])] = None,
    authorization: Annotated[str | None, Header()] = None,
) -> Response:
    """RFC 6749 §4.4. Send `grant_type=client_credentials` form-encoded, with the client id and
    secret as HTTP Basic credentials (or as `client_id` / `client_secret` fields). The answer's
    `access_token` goes in `Authorization: Bearer …` on every other call until it expires."""
    if grant_type != "client_credentials":
        raise Unprocessable(
            "Only grant_type=client_credentials is served here.", error="unsupported_grant_type"
        )
    basic = _basic_credentials(authorization)
    if basic is not None:
        client_id, client_secret = basic
    if not client_id or not client_secret:
        raise identity.InvalidClient(
            "Send the client id and secret (HTTP Basic or form fields).", error="invalid_client"
        )
    answer = await identity.client_credentials(
        uow, sign_in, client_id=client_id, client_secret=client_secret, scope=scope, address=address
    )
    return _token_answer(answer)


@router.post(
    "/auth/login",
    responses={200: {"model": TokenResponse}, **problem_responses(401, 422, 429)},
    summary="Agent sign-in with email and password",
)
async def login(
    body: LoginRequest, uow: Uow, sign_in: SignIn, address: Annotated[str, Depends(client_address)]
) -> Response:
    """An access token (short-lived) and a refresh token for the agents' app."""
    answer = await identity.login(uow, sign_in, email=body.email, password=body.password, address=address)
    await uow.commit()
    return _token_answer(answer)


@router.post("/auth/refresh", responses={200: {"model": TokenResponse}, **problem_responses(400, 422)})
async def refresh(body: RefreshRequest, uow: Uow, sign_in: SignIn) -> Response:
    """A new access token and a new refresh token; the one sent is used up."""
    answer = await identity.refresh(uow, sign_in, refresh_token=body.refresh_token)
    await uow.commit()
    return _token_answer(answer)


@router.post("/auth/logout", status_code=204, responses=problem_responses(401, 422))
async def logout(body: LogoutRequest, uow: Uow, sign_in: SignIn, caller: CurrentCaller) -> Response:
    """The access token used for this call stops working at once; the refresh token too, if sent."""
    await identity.logout(uow, sign_in, caller, refresh_token=body.refresh_token)
    await uow.commit()
    return Response(status_code=204)


@router.put("/agents/{agent_id}/password", status_code=204, responses=problem_responses(401, 403, 404, 422))
async def set_password(agent_id: UUID, body: PasswordChange, uow: Uow, caller: CurrentCaller) -> Response:
    """Set an agent's password (admins), or change your own (with the current one)."""
    await identity.set_password(uow, caller, agent_id, body)
    await uow.commit()
    return Response(status_code=204)


@router.post("/auth/magic-link", status_code=202, responses=problem_responses(422, 429))
async def request_sign_in_link(
    body: SignInLinkRequest, uow: Uow, sign_in: SignIn, address: Annotated[str, Depends(client_address)]
) -> dict[str, str]:
    """Customers: ask for a sign-in link by email (optionally with a ticket number). The answer
    never says whether the address or ticket exists; a link arrives by mail if they do."""
    await identity.request_sign_in_link(
        uow,
        sign_in,
        email=body.email,
        ticket_number=body.ticket_number,
        address=address,
        request_id=request_id_var.get(),
    )
    await uow.commit()
    return {"status": "If the address is known, a sign-in link is on its way."}


@router.post(
    "/auth/magic-link/redeem", responses={200: {"model": TokenResponse}, **problem_responses(400, 422)}
)
async def redeem_sign_in_link(body: SignInLinkRedeem, uow: Uow, sign_in: SignIn) -> Response:
    """Trade the token of a sign-in link (it works once, for a few minutes) for an access token."""
    answer = await identity.redeem_sign_in_link(uow, sign_in, token=body.token)
    await uow.commit()
    return _token_answer(answer)


def jwks(request: Request) -> dict[str, Any]:
    """The public keys that verify access tokens (JWKS, RFC 7517)."""
    document: dict[str, Any] = request.app.state.identity.issuer.keys.jwks()
    return document


well_known = APIRouter(tags=["authentication"])
well_known.add_api_route("/.well-known/jwks.json", jwks, methods=["GET"], summary="Token verification keys")
router.add_api_route("/.well-known/jwks.json", jwks, methods=["GET"], summary="Token verification keys")
