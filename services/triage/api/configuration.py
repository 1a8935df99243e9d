"""Priority matrix, SLA policies and business calendars: staff read them, admins change them.
A configuration that cannot work is refused with a 422 naming the problem, and the previous
one stays in force."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path

from services.triage import configuration
from services.triage.deps import Admin, Staff, Uow
from services.triage.models import DEFAULT_CALENDAR
from services.triage.schemas import (
    CalendarConfig,
    CalendarPublic,
    MatrixConfig,
    OrganizationCalendar,
    OrganizationCalendarPublic,
    PoliciesConfig,
)
from shared.problems import problem_responses

router = APIRouter(tags=["configuration"])

CalendarName = Annotated[
    str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="e.g. `default`, `emea`")
]


@router.get("/matrix", responses=problem_responses(401, 403))
async def get_matrix(uow: Uow, principal: Staff) -> MatrixConfig:
    """The priority matrix (urgency x impact -> P1-P4) and the support-tier adjustments."""
    matrix = await configuration.current_matrix(uow.session)
    return MatrixConfig.model_validate(matrix.to_config())


@router.put("/matrix", responses=problem_responses(401, 403, 422))
async def put_matrix(body: MatrixConfig, uow: Uow, principal: Admin) -> MatrixConfig:
    """Replace the matrix (admins): every urgency x impact cell, adjustments from -3 to 3."""
    saved = await configuration.save_matrix(uow.session, principal, body)
    await uow.commit()
    return saved


@router.get("/policies", responses=problem_responses(401, 403))
async def get_policies(uow: Uow, principal: Staff) -> PoliciesConfig:
    """SLA targets in business minutes per priority, with per-tier overrides."""
    policies = await configuration.current_policies(uow.session)
    return PoliciesConfig.model_validate(policies.to_config())


@router.put("/policies", responses=problem_responses(401, 403, 422))
async def put_policies(body: PoliciesConfig, uow: Uow, principal: Admin) -> PoliciesConfig:
    """Replace the SLA policies (admins). Targets are positive whole business minutes, and
    resolution is never shorter than first response. New decisions use them."""
    saved = await configuration.save_policies(uow.session, principal, body)
    await uow.commit()
    return saved


@router.get("/calendars", responses=problem_responses(401, 403))
async def list_calendars(uow: Uow, principal: Staff) -> list[CalendarPublic]:
    """Every business calendar, `default` included (built in until configured)."""
    return await configuration.list_calendars(uow.session)


@router.get("/calendars/{name}", responses=problem_responses(401, 403, 404, 422))
async def get_calendar(name: CalendarName, uow: Uow, principal: Staff) -> CalendarPublic:
    return await configuration.get_calendar(uow.session, name)


@router.put("/calendars/{name}", responses=problem_responses(401, 403, 422))
async def put_calendar(
    name: CalendarName, body: CalendarConfig, uow: Uow, principal: Admin
) -> CalendarPublic:
    """Create or replace a calendar (admins): weekly hours (no overlaps, each span ending after
    it starts, at least one working day), an IANA timezone, a holiday country (ISO code, or
    null for none) and subdivision, extra closed dates."""
    saved = await configuration.save_calendar(uow.session, principal, name, body)
    await uow.commit()
    return saved


@router.put("/organizations/{organization_id}/calendar", responses=problem_responses(401, 403, 404, 422))
async def put_organization_calendar(
    organization_id: UUID, body: OrganizationCalendar, uow: Uow, principal: Admin
) -> OrganizationCalendarPublic:
    """Which calendar an organization's SLA counts in (admins); null means `default`."""
    organization = await configuration.set_organization_calendar(uow.session, organization_id, body.calendar)
    await uow.commit()
    return OrganizationCalendarPublic(
        organization_id=organization.id, calendar=organization.calendar_name or DEFAULT_CALENDAR
    )
