"""The rules of organizations and contacts: creating and changing them, claiming email domains
(people and open tickets of a claimed domain join), and marking an SLA signed (``sign_sla``,
its one writer). Functions take the unit of work and the caller, flush (never commit) and
record the events their changes cause."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from services.ticket_api.caller import Caller, audit, changes_between, jsonable, require_admin, require_staff
from services.ticket_api.errors import (
    ContactNotFound,
    DomainTaken,
    DuplicateResource,
    OrganizationNotFound,
)
from services.ticket_api.organizations import repository as repo
from services.ticket_api.organizations.announcements import announce_organization, organization_payload
from services.ticket_api.organizations.models import Contact, Organization
from services.ticket_api.organizations.schemas import (
    ContactCreate,
    ContactUpdate,
    OrganizationCreate,
    OrganizationUpdate,
)
from services.ticket_api.tickets import repository as ticket_repo
from services.ticket_api.tickets.service import record_ticket_event
from shared import events as ev
from shared.clock import utcnow
from shared.principal import PrincipalKind
from shared.problems import Forbidden, Unprocessable
from shared.uow import UnitOfWork


async def _claim_domains(uow: UnitOfWork, caller: Caller, organization_id: UUID, domains: list[str]) -> None:
    """Give the organization its email domains. People from those domains who wrote before the
    organization existed join it now, and so do their open tickets (so they can be booked and
    billed)."""
    owners = await repo.owners_of_domains(uow.session, domains)
    taken = sorted(domain for domain, owner in owners.items() if owner != organization_id)
    if taken:
        raise DomainTaken(f"Email domain(s) {', '.join(taken)} already belong to another organization.")
    await repo.replace_domains(uow.session, organization_id, domains)
    contact_ids = await repo.adopt_contacts(uow.session, organization_id, domains)
    for ticket_id in await repo.adopt_open_tickets(uow.session, organization_id, contact_ids):
        ticket = await ticket_repo.get_ticket(uow.session, ticket_id)
        assert ticket is not None
        await uow.session.refresh(ticket)
        await audit(uow, caller, "ticket", ticket.id, "updated", {"organization_id": [None, organization_id]})
        await record_ticket_event(
            uow,
            caller,
            ticket,
            ev.EventType.TICKET_UPDATED,
            ev.TicketUpdatedV1,
            changed={"organization_id": [None, str(organization_id)]},
        )


async def create_organization(
    uow: UnitOfWork, caller: Caller, data: OrganizationCreate
) -> tuple[Organization, list[str]]:
    require_admin(caller)
    now = utcnow()
    organization = Organization(
        name=data.name,
        support_tier=data.support_tier,
        timezone=data.timezone,
        sla_signed_at=now if data.sla_signed else None,
        created_at=now,
        updated_at=now,
    )
    uow.session.add(organization)
    await uow.session.flush()
    await _claim_domains(uow, caller, organization.id, data.email_domains)
    await audit(uow, caller, "organization", organization.id, "created", data.model_dump())
    await uow.emit(
        ev.EventType.ORGANIZATION_CREATED,
        await organization_payload(uow, organization, data.email_domains),
        subject=f"organization:{organization.id}",
        request_id=caller.request_id,
    )
    return organization, data.email_domains


async def visible_organization(uow: UnitOfWork, caller: Caller, organization_id: UUID) -> Organization:
    organization = await repo.get_organization(uow.session, organization_id)
    if organization is None or not caller.principal.can_see_organization(organization_id):
        raise OrganizationNotFound(f"No organization {organization_id}.")
    return organization


async def update_organization(
    uow: UnitOfWork, caller: Caller, organization_id: UUID, data: OrganizationUpdate
) -> tuple[Organization, list[str]]:
    require_admin(caller)
    organization = await visible_organization(uow, caller, organization_id)
    domains = (await repo.domains_of(uow.session, [organization.id]))[organization.id]
    before = {
        "name": organization.name,
        "support_tier": organization.support_tier,
        "timezone": organization.timezone,
        "email_domains": domains,
        "sla_signed": organization.sla_signed_at is not None,
    }
    changes = data.model_dump(exclude_unset=True)
    contacts = {key: changes.pop(key) for key in BILLING_CONTACT_FIELDS if key in changes}
    after = {**before, **{k: v for k, v in changes.items() if v is not None}}
    diff = changes_between(before, after)
    diff.update(await _name_contacts(uow, organization, contacts))
    if not diff:
        return organization, domains
    organization.name = after["name"]
    organization.support_tier = after["support_tier"]
    organization.timezone = after["timezone"]
    newly_signed = "sla_signed" in diff and after["sla_signed"]
    if "sla_signed" in diff and not newly_signed:
        organization.sla_signed_at = None
    if "email_domains" in diff:
        await _claim_domains(uow, caller, organization.id, after["email_domains"])
    organization.updated_at = utcnow()
    await uow.session.flush()
    await audit(uow, caller, "organization", organization.id, "updated", diff)
    if newly_signed:  # announced with the other changes
        await sign_sla(
            uow,
            caller,
            organization,
            at=organization.updated_at,
            evidence=None,
            domains=after["email_domains"],
        )
    else:
        await announce_organization(uow, caller, organization, after["email_domains"])
    return organization, after["email_domains"]


BILLING_CONTACT_FIELDS = ("billing_contact_id", "primary_contact_id")


async def _name_contacts(
    uow: UnitOfWork, organization: Organization, named: dict[str, UUID | None]
) -> dict[str, Any]:
    """Set the organization's billing and primary contact (each must be one of its contacts;
    null clears it) and return what changed."""
    diff: dict[str, Any] = {}
    for field, contact_id in named.items():
        if contact_id is not None:
            contact = await repo.get_contact(uow.session, contact_id)
            if contact is None or contact.organization_id != organization.id:
                raise Unprocessable(
                    f"Contact {contact_id} is not a contact of {organization.name}.",
                    errors=[{"location": f"body.{field}", "message": "not a contact of this organization"}],
                )
        if getattr(organization, field) != contact_id:
            diff[field] = [jsonable(getattr(organization, field)), jsonable(contact_id)]
            setattr(organization, field, contact_id)
    return diff


async def sign_sla(
    uow: UnitOfWork,
    caller: Caller,
    organization: Organization,
    *,
    at: datetime,
    evidence: dict[str, Any] | None,
    domains: list[str] | None = None,
) -> None:
    """Mark the organization's SLA signed at ``at``: the one writer of that fact (an admin's
        change, an agent confirming a received document). Announced as ``organization.updated`` and
        ``organization.sla_signed``; ``evidence`` (what proves it) is audited as ``sla_signed``, None
        when the caller audits the change itself (``domains``: the organization's, when the caller
    has them). Nothing happens when it is signed already."""
    if organization.sla_signed_at is not None:
        return
    organization.sla_signed_at = at
    organization.updated_at = at
    await uow.session.flush()
    if evidence is not None:
        await audit(uow, caller, "organization", organization.id, "sla_signed", evidence)
    if domains is None:
        domains = (await repo.domains_of(uow.session, [organization.id]))[organization.id]
    await announce_organization(uow, caller, organization, domains, sla_signed=True)


# --- contacts --------------------------------------------------------------------------------


async def create_contact(uow: UnitOfWork, caller: Caller, data: ContactCreate) -> Contact:
    if caller.principal.kind is PrincipalKind.CUSTOMER:
        raise Forbidden("Customers cannot add contacts; their organization's portal or an agent can.")
    email = data.email.lower()
    organization_id = data.organization_id
    if (
        organization_id is None
        and not caller.principal.is_staff
        and len(caller.principal.organization_ids) == 1
    ):
        (organization_id,) = caller.principal.organization_ids
    if organization_id is not None:
        await visible_organization(uow, caller, organization_id)
    elif not caller.principal.is_staff:
        raise Unprocessable("Say which of your organizations the contact belongs to (organization_id).")
    if await repo.get_contact_by_email(uow.session, email) is not None:
        raise DuplicateResource(f"A contact with email {email} already exists.")
    contact = Contact(email=email, name=data.name, organization_id=organization_id)
    uow.session.add(contact)
    await uow.session.flush()
    await audit(uow, caller, "contact", contact.id, "created", data.model_dump())
    return contact


async def visible_contact(uow: UnitOfWork, caller: Caller, contact_id: UUID) -> Contact:
    contact = await repo.get_contact(uow.session, contact_id)
    principal = caller.principal
    if principal.kind is PrincipalKind.CUSTOMER and contact_id != principal.contact_id:
        contact = None  # customers never see other people's addresses
    if contact is None or not (
        principal.contact_id == contact_id or principal.can_see_organization(contact.organization_id)
    ):
        raise ContactNotFound(f"No contact {contact_id}.")
    return contact


async def update_contact(uow: UnitOfWork, caller: Caller, contact_id: UUID, data: ContactUpdate) -> Contact:
    contact = await visible_contact(uow, caller, contact_id)
    changes = data.model_dump(exclude_unset=True)
    if "organization_id" in changes:
        require_staff(caller)
        if changes["organization_id"] is not None:
            await visible_organization(uow, caller, changes["organization_id"])
    diff = changes_between({"name": contact.name, "organization_id": contact.organization_id}, changes)
    left = contact.organization_id if "organization_id" in diff else None
    for key, (_old, new) in diff.items():
        setattr(contact, key, new)
    if diff:
        contact.updated_at = utcnow()
        await uow.session.flush()
        await audit(uow, caller, "contact", contact.id, "updated", diff)
    if left is not None:
        await _forget_contact(uow, caller, left, contact.id)
    return contact


async def _forget_contact(uow: UnitOfWork, caller: Caller, organization_id: UUID, contact_id: UUID) -> None:
    """A contact who left an organization is no longer its billing or primary contact."""
    organization = await repo.get_organization(uow.session, organization_id)
    if organization is None:
        return
    diff = await _name_contacts(
        uow, organization, {f: None for f in BILLING_CONTACT_FIELDS if getattr(organization, f) == contact_id}
    )
    if not diff:
        return
    organization.updated_at = utcnow()
    await uow.session.flush()
    await audit(uow, caller, "organization", organization.id, "updated", diff)
    domains = (await repo.domains_of(uow.session, [organization.id]))[organization.id]
    await announce_organization(uow, caller, organization, domains)
