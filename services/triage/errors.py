"""triage's domain errors; each becomes a problem+json answer."""

from __future__ import annotations

from shared.problems import NotFound, Unprocessable


class InvalidConfiguration(Unprocessable):
    slug, title = "invalid-configuration", "Configuration refused; the previous one stays in force"


class TicketNotFound(NotFound):
    slug, title = "ticket-not-found", "Ticket not known to triage"


class CalendarNotFound(NotFound):
    slug, title = "calendar-not-found", "Calendar not found"


class OrganizationNotFound(NotFound):
    slug, title = "organization-not-found", "Organization not known to triage"
