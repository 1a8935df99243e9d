from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query

from services.ticket_api import repository as repo
from services.ticket_api import service
from services.ticket_api.deps import CurrentCaller, Uow, WritingCaller
from services.ticket_api.models import OrganizationCreate, OrganizationPublic, OrganizationUpdate
from services.ticket_api.views import organization_public
from shared.pagination import Page, decode_cursor, page_of
from shared.problems import problem_responses

router = APIRouter(prefix="/organizations", tags=["organizations"])


@router.post("", status_code=201, responses=problem_responses(401, 403, 409, 422))
async def create_organization(
    body: OrganizationCreate, uow: Uow, caller: WritingCaller
) -> OrganizationPublic:
    """Register a customer organization (admins). Senders from `email_domains` join it."""
    organization, domains = await service.create_organization(uow, caller, body)
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
    organization = await service.visible_organization(uow, caller, organization_id)
    domains = await repo.domains_of(uow.session, [organization.id])
    return organization_public(organization, domains[organization.id])


@router.patch("/{organization_id}", responses=problem_responses(401, 403, 404, 409, 422))
async def update_organization(
    organization_id: UUID, body: OrganizationUpdate, uow: Uow, caller: WritingCaller
) -> OrganizationPublic:
    """Change name, tier, timezone, domains or the SLA-signed state (admins).
    Marking the SLA signed emits `organization.sla_signed`."""
    organization, domains = await service.update_organization(uow, caller, organization_id, body)
    await uow.commit()
    return organization_public(organization, domains)
