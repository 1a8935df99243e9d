"""Organizations and contacts as the API answers them and as events carry them."""

from __future__ import annotations

from services.ticket_api.organizations.models import Contact, Organization
from services.ticket_api.organizations.schemas import OrganizationPublic
from shared.events import ContactRef, OrganizationRef


def organization_public(organization: Organization, domains: list[str]) -> OrganizationPublic:
    return OrganizationPublic(
        id=organization.id,
        name=organization.name,
        support_tier=organization.support_tier,
        timezone=organization.timezone,
        sla_signed=organization.sla_signed_at is not None,
        sla_signed_at=organization.sla_signed_at,
        email_domains=domains,
        billing_contact_id=organization.billing_contact_id,
        primary_contact_id=organization.primary_contact_id,
        created_at=organization.created_at,
        updated_at=organization.updated_at,
    )


def contact_ref(contact: Contact) -> ContactRef:
    return ContactRef(id=contact.id, email=contact.email, name=contact.name)


def organization_ref(organization: Organization | None) -> OrganizationRef | None:
    if organization is None:
        return None
    return OrganizationRef(
        id=organization.id,
        name=organization.name,
        support_tier=organization.support_tier,
        sla_signed=organization.sla_signed_at is not None,
        timezone=organization.timezone,
    )
