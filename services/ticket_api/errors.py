"""ticket_api's domain errors; each becomes a problem+json answer."""

from __future__ import annotations

from shared.idempotency import IdempotencyKeyReused as IdempotencyKeyReused
from shared.problems import Conflict, Forbidden, NotFound, Problem, Unprocessable


class TicketNotFound(NotFound):
    slug, title = "ticket-not-found", "Ticket not found"


class OrganizationNotFound(NotFound):
    slug, title = "organization-not-found", "Organization not found"


class ContactNotFound(NotFound):
    slug, title = "contact-not-found", "Contact not found"


class AgentNotFound(NotFound):
    slug, title = "agent-not-found", "Agent not found"


class ClientNotFound(NotFound):
    slug, title = "client-not-found", "Client not found"


class TimeEntryNotFound(NotFound):
    slug, title = "time-entry-not-found", "Time entry not found"


class InvalidTransition(Conflict):
    slug, title = "invalid-status-transition", "Status change not allowed"


class DuplicateResource(Conflict):
    slug, title = "already-exists", "Already exists"


class DomainTaken(Conflict):
    slug, title = "email-domain-taken", "Email domain belongs to another organization"


class WrongCurrentPassword(Unprocessable):
    slug, title = "wrong-current-password", "The current password is wrong"


class FieldNotAllowed(Forbidden):
    slug, title = "field-not-allowed", "Field may not be changed by this caller"


class TicketLinkInvalid(Problem):
    """A track-your-ticket link that is forged, altered, expired or no longer the contact's."""

    status, slug, title = 400, "ticket-link-invalid", "This ticket link is not valid"
