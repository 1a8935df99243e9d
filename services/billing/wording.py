"""Every word billing writes itself, in one place: the descriptions of invoice lines (on the
invoice, its PDF and the ``invoice.issued`` event) and what a close preview says each charge
went to. The PDF's own labels are ``pdf.py``'s; the words of mail (invoices, notices) are the
notifier's templates."""

from __future__ import annotations

from uuid import UUID

TIME_WORKED = "Time worked"
MINIMUM_CHARGE = "Minimum charge per ticket"
BEYOND_PREPAID = "Time beyond prepaid hours"
CORRECTION = "Correction: {text}"
PERIOD_OVERAGE = "Support beyond the {allowance} minutes included in {period} ({used} minutes used)"
CHARGED_TO_ALLOWANCE = "allowance {period}"
CHARGED_TO_BLOCK = "prepaid block {block_id}"
CHARGED_TO_INVOICE = "invoice"
# The longest description taken from a time entry's own text.
ENTRY_TEXT_LIMIT = 200


def entry_line(description: str | None, *, credit: bool) -> str:
    """A time entry's line: the first line of its description (or "Time worked")."""
    text = (description or TIME_WORKED).strip().splitlines()[0][:ENTRY_TEXT_LIMIT]
    return correction(text) if credit else text


def minimum_line(*, credit: bool) -> str:
    return correction(MINIMUM_CHARGE) if credit else MINIMUM_CHARGE


def beyond_prepaid_line(*, credit: bool) -> str:
    return correction(BEYOND_PREPAID.lower()) if credit else BEYOND_PREPAID


def correction(text: str) -> str:
    return CORRECTION.format(text=text)


def period_overage_line(*, allowance_minutes: int, period: str, used_minutes: int) -> str:
    return PERIOD_OVERAGE.format(allowance=allowance_minutes, period=period, used=used_minutes)


def charged_to_allowance(period: str | None) -> str:
    return CHARGED_TO_ALLOWANCE.format(period=period)


def charged_to_block(block_id: UUID | None) -> str:
    return CHARGED_TO_BLOCK.format(block_id=block_id)
