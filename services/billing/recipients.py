"""Whom billing writes to: the one rule for notices and invoices (pure).

An admin's billing address comes first; then the organization's billing contact, then (for a
ticket's invoice) the contact who asked for the work, then the organization's primary contact.
With none of them, the notifier sends to the company's own accounting address, so that a
notice is never lost, and the account says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class RecipientSource(StrEnum):
    BILLING_EMAIL = "billing_email"
    BILLING_CONTACT = "billing_contact"
    TICKET_CONTACT = "ticket_contact"
    PRIMARY_CONTACT = "primary_contact"
    ACCOUNTING = "accounting"


@dataclass(frozen=True)
class Recipient:
    address: str | None
    source: RecipientSource


def billing_recipient(
    *,
    billing_email: str | None,
    billing_contact_email: str | None,
    primary_contact_email: str | None,
    ticket_contact_email: str | None = None,
) -> Recipient:
    """The address a notice or invoice goes to, and why that one (None: the accounting
    address the notifier is configured with)."""
    for address, source in (
        (billing_email, RecipientSource.BILLING_EMAIL),
        (billing_contact_email, RecipientSource.BILLING_CONTACT),
        (ticket_contact_email, RecipientSource.TICKET_CONTACT),
        (primary_contact_email, RecipientSource.PRIMARY_CONTACT),
    ):
        if address:
            return Recipient(address, source)
    return Recipient(None, RecipientSource.ACCOUNTING)


class KnowsItsContacts(Protocol):
    billing_email: str | None
    billing_contact_email: str | None
    primary_contact_email: str | None


def account_recipient(account: KnowsItsContacts, ticket_contact_email: str | None = None) -> Recipient:
    """``billing_recipient`` for a billing account."""
    return billing_recipient(
        billing_email=account.billing_email,
        billing_contact_email=account.billing_contact_email,
        primary_contact_email=account.primary_contact_email,
        ticket_contact_email=ticket_contact_email,
    )
