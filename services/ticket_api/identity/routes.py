"""The routes of sign-in (tokens, the console's cookie session, sign-in links), API clients and
agents."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Cookie, Depends, Form, Header, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy import select

from services.ticket_api.deps import (
    AdminCaller,
    CurrentCaller,
    SignIn,
    StaffCaller,
    Uow,
    WritingCaller,
    client_address,
)
from services.ticket_api.identity import browser_session as bs
from services.ticket_api.identity import repository as repo
from services.ticket_api.identity import revocations
from services.ticket_api.identity import service as identity
from services.ticket_api.identity.models import Agent, ApiClient
from services.ticket_api.identity.schemas import (
    AgentCreate,
    AgentPublic,
    AgentUpdate,
    ApiClientCreate,
    ApiClientPublic,
    ClientSecretIssued,
    LoginRequest,
    LogoutRequest,
    PasswordChange,
    RefreshRequest,
    SecretRotation,
    SignInLinkRedeem,
    SignInLinkRequest,
    TokenResponse,
)
from shared.logging import request_id_var
from shared.pagination import Page, decode_cursor, page_of
from shared.problems import Forbidden, Problem, Unauthorized, Unprocessable, problem_responses

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


session_router = APIRouter(tags=["authentication"])


class CsrfCheckFailed(Forbidden):
    slug, title = "csrf-check-failed", "Request refused: it may come from another site"


class NoSession(Unauthorized):
    slug, title = "no-session", "No session"


def _refuse(refusal: bs.CsrfRefusal | None) -> None:
    if refusal is not None:
        raise CsrfCheckFailed(
            f"{refusal.location.removeprefix('header.')}: {refusal.message}.",
            errors=[{"location": refusal.location, "message": refusal.message}],
        )


def require_csrf_header(request: Request) -> None:
    """The routes that act on the cookie alone: the custom header, and no foreign origin."""
    _refuse(bs.csrf_refusal(request.headers))


CsrfChecked = Depends(require_csrf_header)
SessionCookie = Annotated[str | None, Cookie(alias=bs.COOKIE_NAME, max_length=200)]


def _session_answer(answer: TokenResponse, max_age_seconds: int) -> Response:
    refresh_token = answer.refresh_token
    assert refresh_token is not None, "agent sign-in always issues a refresh token"
    body = answer.model_copy(update={"refresh_token": None}).model_dump_json(exclude_none=True)
    headers = {**NO_STORE, "Set-Cookie": bs.session_cookie(refresh_token, max_age_seconds=max_age_seconds)}
    return Response(body, media_type="application/json", headers=headers)


def _ending_session(problem: Problem) -> Problem:
    """The problem, with the cookie removed (a refresh token that failed is of no more use)."""
    problem.headers = {**(problem.headers or {}), "Set-Cookie": bs.cleared_cookie()}
    return problem


@session_router.post(
    bs.SESSION_PATH.removeprefix("/api/v1"),
    responses={200: {"model": TokenResponse}, **problem_responses(401, 403, 422, 429)},
    summary="Agent sign-in for the browser app (refresh token in a cookie)",
    dependencies=[CsrfChecked],
)
async def sign_in(
    body: LoginRequest, uow: Uow, identity_: SignIn, address: Annotated[str, Depends(client_address)]
) -> Response:
    """As `/auth/login`, but the refresh token is set as an HttpOnly, Secure, SameSite=Strict
    cookie for `/api/v1/auth/session` only, and the answer carries just the access token. Send
    `X-Helpdesk-CSRF: 1`; a request from another origin is refused."""
    answer = await identity.login(uow, identity_, email=body.email, password=body.password, address=address)
    await uow.commit()
    return _session_answer(answer, identity_.settings.refresh_token_ttl_days * 86400)


@session_router.post(
    bs.SESSION_PATH.removeprefix("/api/v1") + "/refresh",
    responses={200: {"model": TokenResponse}, **problem_responses(400, 401, 403)},
    summary="A new access token from the session cookie (which is rotated)",
    dependencies=[CsrfChecked],
)
async def refresh_session(uow: Uow, identity_: SignIn, cookie: SessionCookie = None) -> Response:
    """Uses up the cookie's refresh token and sets the next one (as `/auth/refresh`: a used one
    presented again closes the session). Send `X-Helpdesk-CSRF: 1`."""
    if not cookie:
        raise NoSession(
            "No session cookie: sign in first.",
            errors=[{"location": f"cookie.{bs.COOKIE_NAME}", "message": "missing"}],
        )
    try:
        answer = await identity.refresh(uow, identity_, refresh_token=cookie)
    except identity.InvalidGrant as problem:
        raise _ending_session(problem) from None
    await uow.commit()
    return _session_answer(answer, identity_.settings.refresh_token_ttl_days * 86400)


@session_router.delete(
    bs.SESSION_PATH.removeprefix("/api/v1"),
    status_code=204,
    responses=problem_responses(401, 403),
    summary="Sign out of the browser app",
)
async def sign_out(
    request: Request, uow: Uow, identity_: SignIn, caller: CurrentCaller, cookie: SessionCookie = None
) -> Response:
    """The access token used here and the cookie's session stop working; the cookie is removed.
    The bearer token this needs is itself what no other site can send; a foreign `Origin` is
    refused too."""
    _refuse(bs.origin_refusal(request.headers))
    await identity.logout(uow, identity_, caller, refresh_token=cookie)
    await uow.commit()
    return Response(status_code=204, headers={"Set-Cookie": bs.cleared_cookie()})


clients_router = APIRouter(prefix="/clients", tags=["clients"])


class ClientCreated(BaseModel):
    client: ApiClientPublic
    credentials: ClientSecretIssued


def _client_public(client: ApiClient) -> ApiClientPublic:
    return ApiClientPublic.model_validate(client, from_attributes=True)


@clients_router.post("", status_code=201, responses=problem_responses(401, 403, 404, 422))
async def create_client(body: ApiClientCreate, uow: Uow, caller: CurrentCaller) -> ClientCreated:
    """Register a portal (bound to organizations and scopes) or a service; the secret is shown once."""
    client, secret = await identity.create_client(uow, caller, body)
    await uow.commit()
    return ClientCreated(client=_client_public(client), credentials=secret)


@clients_router.get("", responses=problem_responses(401, 403, 422))
async def list_clients(
    uow: Uow,
    caller: AdminCaller,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> Page[ApiClientPublic]:
    query = select(ApiClient).order_by(ApiClient.id).limit(limit + 1)  # type: ignore[arg-type]
    if (after := decode_cursor(cursor)) is not None:
        query = query.where(ApiClient.id > after)  # type: ignore[arg-type]
    clients = (await uow.session.scalars(query)).all()
    return page_of([_client_public(c) for c in clients], [c.id for c in clients], limit)


@clients_router.get("/{client_uuid}", responses=problem_responses(401, 403, 404, 422))
async def get_client(client_uuid: UUID, uow: Uow, caller: CurrentCaller) -> ApiClientPublic:
    return _client_public(await identity.get_client(uow, caller, client_uuid))


@clients_router.post(
    "/{client_uuid}/secrets", status_code=201, responses=problem_responses(401, 403, 404, 422)
)
async def rotate_secret(
    client_uuid: UUID, body: SecretRotation, uow: Uow, caller: CurrentCaller
) -> ClientSecretIssued:
    """A new secret; older secrets keep working for `overlap_hours`, then stop."""
    issued = await identity.rotate_secret(uow, caller, client_uuid, overlap_hours=body.overlap_hours)
    await uow.commit()
    return issued


@clients_router.delete("/{client_uuid}", status_code=204, responses=problem_responses(401, 403, 404))
async def revoke_client(client_uuid: UUID, uow: Uow, caller: CurrentCaller, sign_in: SignIn) -> Response:
    """Revoke the client: its secrets and every token it holds stop working at once."""
    await identity.revoke_client(uow, sign_in, caller, client_uuid)
    await uow.commit()
    return Response(status_code=204)


agents_router = APIRouter(prefix="/agents", tags=["agents"])


def _agent_public(agent: Agent) -> AgentPublic:
    return AgentPublic.model_validate(agent, from_attributes=True)


@agents_router.post("", status_code=201, responses=problem_responses(401, 403, 409, 422))
async def create_agent(body: AgentCreate, uow: Uow, caller: WritingCaller) -> AgentPublic:
    """Add a consultant: skills, timezone, weekly working hours and capacity (admins)."""
    agent = await identity.create_agent(uow, caller, body)
    await uow.commit()
    return _agent_public(agent)


@agents_router.get("", responses=problem_responses(401, 403, 422))
async def list_agents(
    uow: Uow,
    caller: StaffCaller,
    skill: str | None = Query(None, max_length=100),
    active: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> Page[AgentPublic]:
    agents = await repo.list_agents(
        uow.session, skill=skill, active=active, limit=limit + 1, after=decode_cursor(cursor)
    )
    return page_of([_agent_public(a) for a in agents], [a.id for a in agents], limit)


@agents_router.get("/{agent_id}", responses=problem_responses(401, 403, 404, 422))
async def get_agent(agent_id: UUID, uow: Uow, caller: CurrentCaller) -> AgentPublic:
    return _agent_public(await identity.get_agent(uow, caller, agent_id))


@agents_router.patch("/{agent_id}", responses=problem_responses(401, 403, 404, 422))
async def update_agent(
    agent_id: UUID, body: AgentUpdate, uow: Uow, caller: WritingCaller, sign_in: SignIn
) -> AgentPublic:
    """Change an agent (admins). Deactivating one ends their sessions at once."""
    agent = await identity.update_agent(uow, caller, agent_id, body)
    if body.active is False:
        await revocations.revoke_subject(
            uow.session, sign_in.redis, agent.id, max_token_ttl=sign_in.settings.access_token_ttl_seconds
        )
    await uow.commit()
    return _agent_public(agent)
