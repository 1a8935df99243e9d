"""What ``organization.*`` events say, and the one place they are announced from: an admin's
change, an SLA signed, a contact who left, and the contact of an organization's first ticket
becoming its primary contact (tickets and organizations both announce through here)."""

from __future__ import annotations

from uuid import UUID

from services.ticket_api.caller import Caller, audit
from services.ticket_api.organizations import repository as repo
from services.ticket_api.organizations.models import Organization
from services.ticket_api.organizations.views import contact_ref
from shared import events as ev
from shared.clock import utcnow
from shared.uow import UnitOfWork


async def organization_payload(
    uow: UnitOfWork, organization: Organization, domains: list[str]
) -> ev.OrganizationV1:
    """What ``organization.*`` events say about an organization."""
    return ev.OrganizationV1(
        organization_id=organization.id,
        name=organization.name,
        support_tier=organization.support_tier,
        sla_signed=organization.sla_signed_at is not None,
        email_domains=domains,
        timezone=organization.timezone,
        billing_contact=await _contact_ref(uow, organization.billing_contact_id),
        primary_contact=await _contact_ref(uow, organization.primary_contact_id),
    )


async def _contact_ref(uow: UnitOfWork, contact_id: UUID | None) -> ev.ContactRef | None:
    contact = await repo.get_contact(uow.session, contact_id) if contact_id else None
    return contact_ref(contact) if contact else None


async def adopt_primary_contact(
    uow: UnitOfWork, caller: Caller, organization: Organization, contact_id: UUID
) -> None:
    """The contact of an organization's first ticket becomes its primary contact, until an
    admin names another (announced, so billing knows whom to write to)."""
    if organization.primary_contact_id is not None:
        return
    organization.primary_contact_id = contact_id
    organization.updated_at = utcnow()
    await uow.session.flush()
    await audit(
        uow,
        caller,
        "organization",
        organization.id,
        "updated",
        {"primary_contact_id": [None, str(contact_id)]},
    )
    domains = (await repo.domains_of(uow.session, [organization.id]))[organization.id]
    await announce_organization(uow, caller, organization, domains)


async def announce_organization(
    uow: UnitOfWork,
    caller: Caller,
    organization: Organization,
    domains: list[str],
    *,
    sla_signed: bool = False,
) -> None:
    """``organization.updated`` with the organization as it is now, and ``organization.sla_signed``
    when it has just signed."""
    payload = await organization_payload(uow, organization, domains)
    subject = f"organization:{organization.id}"
    await uow.emit(ev.EventType.ORGANIZATION_UPDATED, payload, subject=subject, request_id=caller.request_id)
    if sla_signed:
        await uow.emit(
            ev.EventType.ORGANIZATION_SLA_SIGNED, payload, subject=subject, request_id=caller.request_id
        )
