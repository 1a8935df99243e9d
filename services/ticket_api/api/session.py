"""The agents' browser session: sign in, refresh and sign out with the refresh token in a cookie.

The same rules as ``/auth/login``, ``/auth/refresh`` and ``/auth/logout`` (``identity``), for the
SPA: the refresh token never reaches the page's scripts (see ``browser_session`` for the cookie
and the CSRF defence); the access token is in the JSON answer, for the app to keep in memory.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Cookie, Depends, Request
from fastapi.responses import Response

from services.ticket_api import browser_session as bs
from services.ticket_api import identity
from services.ticket_api.api.auth import NO_STORE
from services.ticket_api.deps import CurrentCaller, SignIn, Uow, client_address
from services.ticket_api.models import LoginRequest, TokenResponse
from shared.problems import Forbidden, Problem, Unauthorized, problem_responses

router = APIRouter(tags=["authentication"])


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


@router.post(
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


@router.post(
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


@router.delete(
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
