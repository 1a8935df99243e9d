from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query

from services.ticket_api import repository as repo
from services.ticket_api import service
from services.ticket_api.deps import CurrentCaller, Uow, WritingCaller
from services.ticket_api.models import Contact, ContactCreate, ContactPublic, ContactUpdate
from shared.pagination import Page, decode_cursor, page_of
from shared.principal import PrincipalKind
from shared.problems import problem_responses

router = APIRouter(prefix="/contacts", tags=["contacts"])


def _public(contact: Contact) -> ContactPublic:
    return ContactPublic.model_validate(contact, from_attributes=True)


@router.post("", status_code=201, responses=problem_responses(401, 403, 404, 409, 422))
async def create_contact(body: ContactCreate, uow: Uow, caller: WritingCaller) -> ContactPublic:
    contact = await service.create_contact(uow, caller, body)
    await uow.commit()
    return _public(contact)


@router.get("", responses=problem_responses(401, 422))
async def list_contacts(
    uow: Uow,
    caller: CurrentCaller,
    organization_id: UUID | None = None,
    email: str | None = Query(None, max_length=320),
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> Page[ContactPublic]:
    contacts = await repo.list_contacts(
        uow.session,
        scope=caller.principal.org_scope(),
        # A customer sees only their own contact record, never colleagues' addresses.
        only=caller.principal.contact_id if caller.principal.kind is PrincipalKind.CUSTOMER else None,
        organization_id=organization_id,
        email=email,
        limit=limit + 1,
        after=decode_cursor(cursor),
    )
    return page_of([_public(c) for c in contacts], [c.id for c in contacts], limit)


@router.get("/{contact_id}", responses=problem_responses(401, 404, 422))
async def get_contact(contact_id: UUID, uow: Uow, caller: CurrentCaller) -> ContactPublic:
    return _public(await service.visible_contact(uow, caller, contact_id))


@router.patch("/{contact_id}", responses=problem_responses(401, 403, 404, 422))
async def update_contact(
    contact_id: UUID, body: ContactUpdate, uow: Uow, caller: WritingCaller
) -> ContactPublic:
    contact = await service.update_contact(uow, caller, contact_id, body)
    await uow.commit()
    return _public(contact)
