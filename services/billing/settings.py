from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from pydantic import Field

from shared.settings import ServiceSettings, service_config


class Settings(ServiceSettings):
    service_name: ClassVar[str] = "billing"
    model_config = service_config("BILLING_")

    # Who issues invoices, and how customers pay them (printed on every invoice).
    issuer_name: str = "Helpdesk Consulting"
    issuer_address: str = "100 Main Street, Chicago, IL 60601"
    payment_instructions: str = (
        "Pay by bank transfer to Helpdesk Consulting, IBAN US00 0000 0000 0000, quoting the invoice number."
    )
    # Invoice dates, due dates and the year in the invoice number are taken in this timezone.
    issuer_timezone: str = "America/Chicago"

    # The plan a new billing account gets, by the organization's support tier (admins change it).
    default_currency: str = Field("USD", min_length=3, max_length=3)
    default_tax_rate: Decimal = Field(Decimal("0"), ge=0, lt=1, description="0.0825 is 8.25 %")
    default_payment_terms_days: int = Field(30, ge=0, le=365)
    default_hourly_rate: Decimal = Field(Decimal("150.00"), ge=0)
    default_increment_minutes: int = Field(15, ge=1, le=240)
    default_minimum_minutes_per_ticket: int = Field(30, ge=0, le=24 * 60)
    default_agreement_allowance_minutes: int = Field(600, ge=0)
    default_agreement_overage_rate: Decimal = Field(Decimal("120.00"), ge=0)
    default_block_minutes: int = Field(1200, ge=0, description="the prepaid block a new block account gets")
    default_block_overage_rate: Decimal = Field(Decimal("150.00"), ge=0)
    default_block_valid_days: int = Field(0, ge=0, description="0: blocks never expire")
    # block.low is sent once the prepaid balance is at or below this share of what was bought.
    block_low_threshold_percent: int = Field(20, ge=0, le=100)

    # A close is charged this long after the ticket closed, so time entry events that the queue
    # delivers late still land on the same invoice.
    close_settle_delay_seconds: float = Field(5.0, ge=0)
    # How long an Idempotency-Key's answer is replayed (plans, blocks, period closes).
    idempotency_ttl_hours: int = Field(48, ge=24)
    # Accounts per transaction in the period close.
    period_close_batch_size: int = Field(500, ge=1, le=10_000)
