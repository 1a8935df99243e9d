"""Who is calling: the FastAPI dependency every service's routes use, and role checks.

A route that takes ``principal: CurrentPrincipal`` answers 401 (problem+json with a Bearer
challenge) unless the request carries a valid token; authorization per object then filters
by ``principal.org_scope()`` in the query, so another organization's rows answer 404.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.principal import Principal
from shared.problems import Forbidden, Unauthorized
from shared.runtime import runtime_of
from shared.tokens import InvalidToken

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="helpdesk"'}

bearer_scheme = HTTPBearer(
    auto_error=False,
    description="An access token: `POST /api/v1/oauth/token` (portals), `POST /api/v1/auth/login` (agents).",
)


class StaffOnly(Forbidden):
    slug, title = "staff-only", "Only agents and admins may do this"


class AdminOnly(Forbidden):
    slug, title = "admin-only", "Only admins may do this"


class MissingScope(Forbidden):
    slug, title = "missing-scope", "The token lacks a scope this needs"


async def authenticate(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("Send 'Authorization: Bearer <access token>'.", headers=CHALLENGE)
    try:
        return await runtime_of(request).verifier.verify(credentials.credentials)
    except InvalidToken as error:
        raise Unauthorized(str(error).capitalize() + ".", headers=CHALLENGE) from None


CurrentPrincipal = Annotated[Principal, Depends(authenticate)]


def require_staff(principal: Principal) -> None:
    if not principal.is_staff:
        raise StaffOnly("This action is for agents and admins.")


def require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise AdminOnly("This action is for admins.")


async def staff_principal(principal: CurrentPrincipal) -> Principal:
    """The caller, when an agent, admin or service (403 for portals and customers)."""
    require_staff(principal)
    return principal


StaffPrincipal = Annotated[Principal, Depends(staff_principal)]


def require_scope(principal: Principal, scope: str) -> None:
    if not principal.has_scope(scope):
        raise MissingScope(
            f"This needs the '{scope}' scope; ask for it when requesting the token.", scope=scope
        )
