"""The routes of organizations and contacts."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query

from services.ticket_api.deps import CurrentCaller, Uow, WritingCaller
from services.ticket_api.organizations import repository as repo
from services.ticket_api.organizations import service as organization_service
from services.ticket_api.organizations.models import Contact
from services.ticket_api.organizations.schemas import (
    ContactCreate,
    ContactPublic,
    ContactUpdate,
    OrganizationCreate,
    OrganizationPublic,
    OrganizationUpdate,
)
from services.ticket_api.organizations.views import organization_public
from shared.pagination import Page, decode_cursor, page_of
from shared.principal import PrincipalKind
from shared.problems import problem_responses

router = APIRouter(prefix="/organizations", tags=["organizations"])


@router.post("", status_code=201, responses=problem_responses(401, 403, 409, 422))
async def create_organization(
    body: OrganizationCreate, uow: Uow, caller: WritingCaller
) -> OrganizationPublic:
    """Register a customer organization (admins). Senders from `email_domains` join it."""
    organization, domains = await organization_service.create_organization(uow, caller, body)
    await uow.commit()
    return organization_public(organization, domains)


@router.get("", responses=problem_responses(401, 422))
async def list_organizations(
    uow: Uow,
    caller: CurrentCaller,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> Page[OrganizationPublic]:
    """Organizations the caller may see (all for staff, its own for portals)."""
    organizations = await repo.list_organizations(
        uow.session, scope=caller.principal.org_scope(), limit=limit + 1, after=decode_cursor(cursor)
    )
    domains = await repo.domains_of(uow.session, [o.id for o in organizations])
    items = [organization_public(o, domains[o.id]) for o in organizations]
    return page_of(items, [o.id for o in organizations], limit)


@router.get("/{organization_id}", responses=problem_responses(401, 404, 422))
async def get_organization(organization_id: UUID, uow: Uow, caller: CurrentCaller) -> OrganizationPublic:
    organization = await organization_service.visible_organization(uow, caller, organization_id)
    domains = await repo.domains_of(uow.session, [organization.id])
    return organization_public(organization, domains[organization.id])


@router.patch("/{organization_id}", responses=problem_responses(401, 403, 404, 409, 422))
async def update_organization(
    organization_id: UUID, body: OrganizationUpdate, uow: Uow, caller: WritingCaller
) -> OrganizationPublic:
    """Change name, tier, timezone, domains or the SLA-signed state (admins).
    Marking the SLA signed emits `organization.sla_signed`."""
    organization, domains = await organization_service.update_organization(uow, caller, organization_id, body)
    await uow.commit()
    return organization_public(organization, domains)


contacts_router = APIRouter(prefix="/contacts", tags=["contacts"])


def _public(contact: Contact) -> ContactPublic:
    return ContactPublic.model_validate(contact, from_attributes=True)


@contacts_router.post("", status_code=201, responses=problem_responses(401, 403, 404, 409, 422))
async def create_contact(body: ContactCreate, uow: Uow, caller: WritingCaller) -> ContactPublic:
    contact = await organization_service.create_contact(uow, caller, body)
    await uow.commit()
    return _public(contact)


@contacts_router.get("", responses=problem_responses(401, 422))
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


@contacts_router.get("/{contact_id}", responses=problem_responses(401, 404, 422))
async def get_contact(contact_id: UUID, uow: Uow, caller: CurrentCaller) -> ContactPublic:
    return _public(await organization_service.visible_contact(uow, caller, contact_id))


@contacts_router.patch("/{contact_id}", responses=problem_responses(401, 403, 404, 422))
async def update_contact(
    contact_id: UUID, body: ContactUpdate, uow: Uow, caller: WritingCaller
) -> ContactPublic:
    contact = await organization_service.update_contact(uow, caller, contact_id, body)
    await uow.commit()
    return _public(contact)
