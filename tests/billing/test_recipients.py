"""Whom billing writes to: the order of the addresses (pure)."""

from __future__ import annotations

import pytest

from services.billing.recipients import Recipient, RecipientSource, billing_recipient

ADDRESSES = {
    "billing_email": "ap@acme.test",
    "billing_contact_email": "bills@acme.test",
    "ticket_contact_email": "jane@acme.test",
    "primary_contact_email": "pat@acme.test",
}


@pytest.mark.parametrize(
    ("known", "expected"),
    [
        (ADDRESSES, Recipient("ap@acme.test", RecipientSource.BILLING_EMAIL)),
        ({**ADDRESSES, "billing_email": None}, Recipient("bills@acme.test", RecipientSource.BILLING_CONTACT)),
        (
            {**ADDRESSES, "billing_email": None, "billing_contact_email": None},
            Recipient("jane@acme.test", RecipientSource.TICKET_CONTACT),
        ),
        (
            {"billing_email": None, "billing_contact_email": None, "primary_contact_email": "pat@acme.test"},
            Recipient("pat@acme.test", RecipientSource.PRIMARY_CONTACT),
        ),
        (
            {"billing_email": None, "billing_contact_email": None, "primary_contact_email": None},
            Recipient(None, RecipientSource.ACCOUNTING),
        ),
        (
            {"billing_email": "", "billing_contact_email": None, "primary_contact_email": "pat@acme.test"},
            Recipient("pat@acme.test", RecipientSource.PRIMARY_CONTACT),
        ),
    ],
)
def test_the_first_known_address_wins(known: dict[str, str | None], expected: Recipient) -> None:
    assert billing_recipient(**known) == expected  # type: ignore[arg-type]
