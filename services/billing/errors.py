"""billing's domain errors; each becomes a problem+json answer."""

from __future__ import annotations

from shared.problems import Conflict, NotFound, Unprocessable


class AccountNotFound(NotFound):
    slug, title = "billing-account-not-found", "Billing account not found"


class InvoiceNotFound(NotFound):
    slug, title = "invoice-not-found", "Invoice not found"


class TicketNotFound(NotFound):
    slug, title = "ticket-not-found", "Ticket not found"


class InvoiceStateConflict(Conflict):
    slug, title = "invoice-state-conflict", "Invoice cannot change that way"


class InvalidPlan(Unprocessable):
    slug, title = "invalid-plan", "Plan is not valid"


class InvalidPeriod(Unprocessable):
    slug, title = "invalid-period", "Period is not valid"
