"""OAuth clients of third-party portals and of our own services (admins)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy import select

from services.ticket_api import identity
from services.ticket_api.deps import CurrentCaller, SignIn, Uow
from services.ticket_api.models import (
    ApiClient,
    ApiClientCreate,
    ApiClientPublic,
    ClientSecretIssued,
    SecretRotation,
)
from shared.pagination import Page, decode_cursor, page_of
from shared.problems import problem_responses

router = APIRouter(prefix="/clients", tags=["clients"])


class ClientCreated(BaseModel):
    client: ApiClientPublic
    credentials: ClientSecretIssued


def _public(client: ApiClient) -> ApiClientPublic:
    return ApiClientPublic.model_validate(client, from_attributes=True)


@router.post("", status_code=201, responses=problem_responses(401, 403, 404, 422))
async def create_client(body: ApiClientCreate, uow: Uow, caller: CurrentCaller) -> ClientCreated:
    """Register a portal (bound to organizations and scopes) or a service; the secret is shown once."""
    client, secret = await identity.create_client(uow, caller, body)
    await uow.commit()
    return ClientCreated(client=_public(client), credentials=secret)


@router.get("", responses=problem_responses(401, 403, 422))
async def list_clients(
    uow: Uow,
    caller: CurrentCaller,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> Page[ApiClientPublic]:
    identity.require_admin(caller.principal)
    query = select(ApiClient).order_by(ApiClient.id).limit(limit + 1)  # type: ignore[arg-type]
    if (after := decode_cursor(cursor)) is not None:
        query = query.where(ApiClient.id > after)  # type: ignore[arg-type]
    clients = (await uow.session.scalars(query)).all()
    return page_of([_public(c) for c in clients], [c.id for c in clients], limit)


@router.get("/{client_uuid}", responses=problem_responses(401, 403, 404, 422))
async def get_client(client_uuid: UUID, uow: Uow, caller: CurrentCaller) -> ApiClientPublic:
    return _public(await identity.get_client(uow, caller, client_uuid))


@router.post("/{client_uuid}/secrets", status_code=201, responses=problem_responses(401, 403, 404, 422))
async def rotate_secret(
    client_uuid: UUID, body: SecretRotation, uow: Uow, caller: CurrentCaller
) -> ClientSecretIssued:
    """A new secret; older secrets keep working for `overlap_hours`, then stop."""
    issued = await identity.rotate_secret(uow, caller, client_uuid, overlap_hours=body.overlap_hours)
    await uow.commit()
    return issued


@router.delete("/{client_uuid}", status_code=204, responses=problem_responses(401, 403, 404))
async def revoke_client(client_uuid: UUID, uow: Uow, caller: CurrentCaller, sign_in: SignIn) -> Response:
    """Revoke the client: its secrets and every token it holds stop working at once."""
    await identity.revoke_client(uow, sign_in, caller, client_uuid)
    await uow.commit()
    return Response(status_code=204)
