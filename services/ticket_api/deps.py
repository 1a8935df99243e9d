"""Typed request dependencies: the unit of work, the authenticated caller, settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated
from uuid import UUID

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.ticket_api import repository as repo
from services.ticket_api.credentials import token_hash
from services.ticket_api.models import ApiClientKind
from services.ticket_api.service import Caller
from services.ticket_api.settings import Settings
from shared.logging import request_id_var
from shared.principal import Principal, PrincipalKind
from shared.problems import Unauthorized
from shared.runtime import runtime_of
from shared.uow import UnitOfWork

bearer = HTTPBearer(
    auto_error=False, description="An API token (`hd_…`) issued to an agent, admin or portal."
)

_KINDS = {
    ApiClientKind.ADMIN: PrincipalKind.ADMIN,
    ApiClientKind.AGENT: PrincipalKind.AGENT,
    ApiClientKind.PORTAL: PrincipalKind.PORTAL,
}


async def unit_of_work(request: Request) -> AsyncIterator[UnitOfWork]:
    """One session per request; the route commits. Whatever is not committed rolls back."""
    runtime = runtime_of(request)
    async with runtime.sessions() as session:
        yield UnitOfWork(session, runtime.outbox)


Uow = Annotated[UnitOfWork, Depends(unit_of_work)]


def settings_of(request: Request) -> Settings:
    settings = runtime_of(request).settings
    assert isinstance(settings, Settings)
    return settings


AppSettings = Annotated[Settings, Depends(settings_of)]


async def authenticated_caller(
    uow: Uow, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Caller:
    challenge = {"WWW-Authenticate": 'Bearer realm="helpdesk"'}
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("Send 'Authorization: Bearer <token>'.", headers=challenge)
    client = await repo.get_api_client_by_token_hash(uow.session, token_hash(credentials.credentials))
    if client is None:
        raise Unauthorized("The token is unknown, revoked or malformed.", headers=challenge)
    principal = Principal(
        kind=_KINDS[ApiClientKind(client.kind)],
        subject_id=client.id,
        name=client.name,
        organization_ids=frozenset(UUID(value) for value in client.organization_ids),
        agent_id=client.agent_id,
    )
    return Caller(principal=principal, request_id=request_id_var.get())


CurrentCaller = Annotated[Caller, Depends(authenticated_caller)]
