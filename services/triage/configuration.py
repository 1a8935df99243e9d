"""triage's configuration: the priority matrix, the SLA policies and the business calendars
(stored as validated documents; the built-in defaults until configured), and which calendar
an organization's SLA counts in."""

from __future__ import annotations

import logging
from datetime import date
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from services.triage import repository as repo
from services.triage.business_hours import (
    BusinessCalendar,
    CalendarError,
    format_weekly_hours,
    parse_weekly_hours,
)
from services.triage.errors import CalendarNotFound, InvalidConfiguration, OrganizationNotFound
from services.triage.models import (
    DEFAULT_CALENDAR,
    BusinessCalendarRecord,
    OrganizationRecord,
    TicketRecord,
)
from services.triage.priority_matrix import MatrixError, PriorityMatrix
from services.triage.schemas import CalendarConfig, CalendarPublic, MatrixConfig, PoliciesConfig
from services.triage.sla import PolicyError, SlaPolicies
from shared.principal import Principal

log = logging.getLogger(__name__)

MATRIX_KEY, POLICIES_KEY = "matrix", "policies"


async def current_config(session: AsyncSession) -> tuple[PriorityMatrix, SlaPolicies]:
    """The matrix and the policies in force (the built-in defaults until configured)."""
    settings = await repo.get_settings(session)
    matrix = settings.get(MATRIX_KEY)
    policies = settings.get(POLICIES_KEY)
    return (
        PriorityMatrix.from_config(matrix["cells"], matrix["tier_adjustments"])
        if matrix
        else PriorityMatrix.default(),
        SlaPolicies.from_config(policies) if policies else SlaPolicies.standard(),
    )


async def current_matrix(session: AsyncSession) -> PriorityMatrix:
    return (await current_config(session))[0]


async def current_policies(session: AsyncSession) -> SlaPolicies:
    return (await current_config(session))[1]


def calendar_of(record: BusinessCalendarRecord | None) -> BusinessCalendar:
    if record is None:
        return BusinessCalendar()
    return BusinessCalendar(
        timezone=record.timezone,
        weekly_hours=parse_weekly_hours(record.weekly_hours),
        holiday_country=record.holiday_country,
        holiday_subdivision=record.holiday_subdivision,
        closed_dates=frozenset(date.fromisoformat(d) for d in record.closed_dates),
    )


async def calendar_named(session: AsyncSession, name: str) -> BusinessCalendar:
    """A stored calendar; the built-in default (Mon-Fri 09:00-17:00 America/Chicago, US
    holidays) for ``default`` until it is configured, or for a name that no longer exists."""
    record = await repo.get_calendar(session, name)
    if record is None and name != DEFAULT_CALENDAR:
        log.warning("calendar %r is not configured; using the default calendar", name)
        record = await repo.get_calendar(session, DEFAULT_CALENDAR)
    return calendar_of(record)


def calendar_public(name: str, record: BusinessCalendarRecord | None) -> CalendarPublic:
    calendar = calendar_of(record)
    return CalendarPublic(
        name=name,
        timezone=calendar.timezone,
        weekly_hours=format_weekly_hours(calendar.weekly_hours),
        holiday_country=calendar.holiday_country,
        holiday_subdivision=calendar.holiday_subdivision,
        closed_dates=sorted(calendar.closed_dates),
        updated_at=record.updated_at if record else None,
        updated_by=record.updated_by if record else None,
    )


async def get_calendar(session: AsyncSession, name: str) -> CalendarPublic:
    record = await repo.get_calendar(session, name)
    if record is None and name != DEFAULT_CALENDAR:
        raise CalendarNotFound(f"No calendar {name!r}.")
    return calendar_public(name, record)


async def list_calendars(session: AsyncSession) -> list[CalendarPublic]:
    records = {record.name: record for record in await repo.list_calendars(session)}
    names = sorted(records.keys() | {DEFAULT_CALENDAR})
    return [calendar_public(name, records.get(name)) for name in names]


async def save_calendar(
    session: AsyncSession, principal: Principal, name: str, config: CalendarConfig
) -> CalendarPublic:
    """Validate and store a calendar; a bad one raises 422 and changes nothing. New decisions
    and timers use it; due times already computed stay as they are."""
    try:
        calendar = BusinessCalendar(
            timezone=config.timezone,
            weekly_hours=parse_weekly_hours(config.weekly_hours),
            holiday_country=config.holiday_country,
            holiday_subdivision=config.holiday_subdivision,
            closed_dates=frozenset(config.closed_dates),
        )
    except CalendarError as error:
        raise InvalidConfiguration(f"Calendar {name!r}: {error}.") from None
    record = await repo.save_calendar(
        session,
        name,
        {
            "timezone": calendar.timezone,
            "weekly_hours": format_weekly_hours(calendar.weekly_hours),
            "holiday_country": calendar.holiday_country,
            "holiday_subdivision": calendar.holiday_subdivision,
            "closed_dates": [d.isoformat() for d in sorted(calendar.closed_dates)],
            "updated_by": principal.audit_ref,
        },
    )
    return calendar_public(name, record)


async def set_organization_calendar(
    session: AsyncSession, organization_id: UUID, calendar_name: str | None
) -> OrganizationRecord:
    organization = await repo.get_organization(session, organization_id)
    if organization is None:
        raise OrganizationNotFound(f"No organization {organization_id} has reached triage yet.")
    named = calendar_name is not None and calendar_name != DEFAULT_CALENDAR
    if named and await repo.get_calendar(session, calendar_name or "") is None:
        raise InvalidConfiguration(f"No calendar {calendar_name!r}; create it first.")
    organization.calendar_name = None if calendar_name == DEFAULT_CALENDAR else calendar_name
    await session.flush()
    return organization


async def save_matrix(session: AsyncSession, principal: Principal, config: MatrixConfig) -> MatrixConfig:
    try:
        matrix = PriorityMatrix.from_config(config.cells, config.tier_adjustments)
    except MatrixError as error:
        raise InvalidConfiguration(f"Priority matrix: {error}.") from None
    await repo.save_setting(session, MATRIX_KEY, matrix.to_config(), principal.audit_ref)
    return MatrixConfig.model_validate(matrix.to_config())


async def save_policies(
    session: AsyncSession, principal: Principal, config: PoliciesConfig
) -> PoliciesConfig:
    try:
        policies = SlaPolicies.from_config(config.model_dump())
    except PolicyError as error:
        raise InvalidConfiguration(f"SLA policies: {error}.") from None
    await repo.save_setting(session, POLICIES_KEY, policies.to_config(), principal.audit_ref)
    return PoliciesConfig.model_validate(policies.to_config())


async def ticket_calendar(
    session: AsyncSession, ticket: TicketRecord
) -> tuple[str, BusinessCalendar, str | None]:
    """The calendar a ticket's SLA counts in (its organization's): its name, the calendar, and
    the organization's support tier."""
    organization = (
        await repo.get_organization(session, ticket.organization_id) if ticket.organization_id else None
    )
    tier = organization.support_tier if organization else (ticket.organization or {}).get("support_tier")
    name = calendar_name_of(organization)
    return name, await calendar_named(session, name), tier


def calendar_name_of(organization: OrganizationRecord | None) -> str:
    return organization.calendar_name if organization and organization.calendar_name else DEFAULT_CALENDAR
