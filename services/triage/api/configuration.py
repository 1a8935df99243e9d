"""Priority matrix, SLA policies and business calendars: staff read them, admins change them.
A configuration that cannot work is refused with a 422 naming the problem, and the previous
one stays in force."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path
from pydantic import BaseModel

from services.triage import service
from services.triage.deps import Uow
from services.triage.models import (
    CalendarConfig,
    CalendarPublic,
    MatrixConfig,
    OrganizationCalendar,
    PoliciesConfig,
)
from shared.auth import CurrentPrincipal, require_admin, require_staff
from shared.problems import problem_responses

router = APIRouter(tags=["configuration"])

CalendarName = Annotated[
    str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="e.g. `default`, `emea`")
]


@router.get("/matrix", responses=problem_responses(401, 403))
async def get_matrix(uow: Uow, principal: CurrentPrincipal) -> MatrixConfig:
    """The priority matrix (urgency x impact -> P1-P4) and the support-tier adjustments."""
    require_staff(principal)
    matrix = await service.current_matrix(uow.session)
    return MatrixConfig.model_validate(matrix.to_config())


@router.put("/matrix", responses=problem_responses(401, 403, 422))
async def put_matrix(body: MatrixConfig, uow: Uow, principal: CurrentPrincipal) -> MatrixConfig:
    """Replace the matrix (admins): every urgency x impact cell, adjustments from -3 to 3."""
    require_admin(principal)
    saved = await service.save_matrix(uow.session, principal, body)
    await uow.commit()
    return saved


@router.get("/policies", responses=problem_responses(401, 403))
async def get_policies(uow: Uow, principal: CurrentPrincipal) -> PoliciesConfig:
    """SLA targets in business minutes per priority, with per-tier overrides."""
    require_staff(principal)
    policies = await service.current_policies(uow.session)
    return PoliciesConfig.model_validate(policies.to_config())


@router.put("/policies", responses=problem_responses(401, 403, 422))
async def put_policies(body: PoliciesConfig, uow: Uow, principal: CurrentPrincipal) -> PoliciesConfig:
    """Replace the SLA policies (admins). Targets are positive whole business minutes, and
    resolution is never shorter than first response. New decisions use them."""
    require_admin(principal)
    saved = await service.save_policies(uow.session, principal, body)
    await uow.commit()
    return saved


@router.get("/calendars", responses=problem_responses(401, 403))
async def list_calendars(uow: Uow, principal: CurrentPrincipal) -> list[CalendarPublic]:
    """Every business calendar, `default` included (built in until configured)."""
    require_staff(principal)
    return await service.list_calendars(uow.session)


@router.get("/calendars/{name}", responses=problem_responses(401, 403, 404, 422))
async def get_calendar(name: CalendarName, uow: Uow, principal: CurrentPrincipal) -> CalendarPublic:
    require_staff(principal)
    return await service.get_calendar(uow.session, name)


@router.put("/calendars/{name}", responses=problem_responses(401, 403, 422))
async def put_calendar(
    name: CalendarName, body: CalendarConfig, uow: Uow, principal: CurrentPrincipal
) -> CalendarPublic:
    """Create or replace a calendar (admins): weekly hours (no overlaps, each span ending after
    it starts, at least one working day), an IANA timezone, a holiday country (ISO code, or
    null for none) and subdivision, extra closed dates."""
    require_admin(principal)
    saved = await service.save_calendar(uow.session, principal, name, body)
    await uow.commit()
    return saved


class OrganizationCalendarPublic(BaseModel):
    organization_id: UUID
    calendar: str


@router.put("/organizations/{organization_id}/calendar", responses=problem_responses(401, 403, 404, 422))
async def put_organization_calendar(
    organization_id: UUID, body: OrganizationCalendar, uow: Uow, principal: CurrentPrincipal
) -> OrganizationCalendarPublic:
    """Which calendar an organization's SLA counts in (admins); null means `default`."""
    require_admin(principal)
    organization = await service.set_organization_calendar(uow.session, organization_id, body.calendar)
    await uow.commit()
    return OrganizationCalendarPublic(
        organization_id=organization.id, calendar=organization.calendar_name or service.DEFAULT_CALENDAR
    )
