"""billing's API schemas: what its routes take and answer (the tables are in ``models.py``).
Amounts are ``Decimal`` with two places, rates per hour, tax rates as fractions."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from pydantic import ConfigDict, field_validator, model_validator
from sqlmodel import Field, SQLModel

from services.billing.models import InvoiceKind, InvoiceStatus, NoticeKind, PlanKind, UsageKind
from services.billing.recipients import RecipientSource


def example(body: dict[str, Any]) -> ConfigDict:
    return ConfigDict(extra="forbid", json_schema_extra={"examples": [body]})


class PlanCreate(SQLModel):
    """A new plan version; fields left out are taken from the plan in force on that date (or
    the defaults of ``kind``)."""

    model_config = example(  # type: ignore[assignment]
        {
            "kind": "agreement",
            "effective_from": "2026-12-01",
            "allowance_minutes": 600,
            "overage_rate_per_hour": "120.00",
            "increment_minutes": 15,
        }
    )
    kind: PlanKind
    effective_from: date
    increment_minutes: int = Field(
        ge=1,
        le=240,
        description="every time entry (hourly, agreement draw or block draw) is rounded up to this "
        "many minutes; required: the rounding is a business decision, never an implicit default",
    )
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    rate_per_hour: Decimal | None = Field(default=None, ge=0, le=1_000_000, decimal_places=2)
    minimum_minutes_per_ticket: int | None = Field(default=None, ge=0, le=24 * 60)
    tax_rate: Decimal | None = Field(default=None, ge=0, lt=1, decimal_places=6)
    payment_terms_days: int | None = Field(default=None, ge=0, le=365)
    allowance_minutes: int | None = Field(default=None, ge=0, le=1_000_000)
    overage_rate_per_hour: Decimal | None = Field(default=None, ge=0, le=1_000_000, decimal_places=2)
    block_low_threshold_percent: int | None = Field(
        default=None, ge=0, le=100, description="block.low at or below this share of the minutes bought"
    )

    @field_validator("currency")
    @classmethod
    def _upper(cls, value: str | None) -> str | None:
        if value is not None and not value.isalpha():
            raise ValueError("an ISO 4217 code like USD")
        return value.upper() if value else value


class PlanPublic(SQLModel):
    id: UUID
    version: int
    kind: PlanKind
    effective_from: date
    currency: str
    rate_per_hour: Decimal
    increment_minutes: int
    minimum_minutes_per_ticket: int
    tax_rate: Decimal
    payment_terms_days: int
    allowance_minutes: int
    overage_rate_per_hour: Decimal
    block_low_threshold_percent: int
    created_by: str
    created_at: datetime


class BlockCreate(SQLModel):
    model_config = example(  # type: ignore[assignment]
        {"minutes": 1200, "expires_at": "2027-12-31T23:59:59Z", "reference": "PO-4711"}
    )
    minutes: int = Field(ge=1, le=1_000_000)
    purchased_at: datetime | None = None
    expires_at: datetime | None = None
    reference: str = Field(default="", max_length=200)

    @model_validator(mode="after")
    def _aware(self) -> BlockCreate:
        for value in (self.purchased_at, self.expires_at):
            if value is not None and value.tzinfo is None:
                raise ValueError("give a timezone, e.g. 2027-12-31T23:59:59Z")
        return self


class BlockPublic(SQLModel):
    id: UUID
    minutes: int
    used_minutes: int
    remaining_minutes: int
    purchased_at: datetime
    expires_at: datetime | None
    expired: bool
    reference: str


class AccountUpdate(SQLModel):
    model_config = example({"billing_email": "accounts@acme.test"})  # type: ignore[assignment]
    billing_email: str | None = Field(default=None, max_length=320)


class AllowancePublic(SQLModel):
    period: str
    allowance_minutes: int
    used_minutes: int
    remaining_minutes: int


class AccountPublic(SQLModel):
    organization_id: UUID
    name: str
    support_tier: str
    timezone: str
    billing_email: str | None
    notices_to: str | None = Field(
        description="where notices and invoices go: the billing address, else the organization's "
        "billing contact, else its primary contact (a ticket's invoice: the ticket's contact before "
        "the primary contact); null: the company's own accounting address"
    )
    notices_to_source: RecipientSource
    plan: PlanPublic
    allowance: AllowancePublic | None
    prepaid_remaining_minutes: int | None
    closed_through: str | None


class PeriodCloseRequest(SQLModel):
    """Which periods to close: by default every account's complete periods not closed yet as of
    now; an admin may name one organization and an instant (for corrections and audits)."""

    model_config = example(  # type: ignore[assignment]
        {"organization_id": "0193a3c4-58e2-7c1a-9d2e-3f4a5b6c7d8e", "as_of": "2026-12-01T06:00:00Z"}
    )
    organization_id: UUID | None = None
    as_of: datetime | None = Field(
        default=None, description="close the periods complete at this instant (not in the future)"
    )

    @field_validator("as_of")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("give a timezone, e.g. 2026-12-01T06:00:00Z")
        return value


class PeriodCloseResult(SQLModel):
    """What one run of the period close did."""

    accounts_closed: int
    overage_invoices: int
    closes_charged: int = Field(description="closes still waiting that were charged into the month")
    entries_swept: int = Field(description="time logged on closed tickets drawn into the month")
    batches: int
    finished: bool = Field(description="false: the time budget ran out; call again to go on")


class UsageEntryPublic(SQLModel):
    id: UUID
    time_entry_id: UUID
    revision: int
    kind: UsageKind
    ticket_id: UUID
    ticket_number: str
    agent_id: UUID
    minutes: int
    billable: bool
    started_at: datetime
    changed_at: datetime
    recorded_at: datetime


class InvoiceLinePublic(SQLModel):
    position: int
    description: str
    ticket_number: str | None
    time_entry_id: UUID | None
    work_date: date | None
    minutes: int
    rate_per_hour: Decimal
    amount: Decimal


class InvoicePublic(SQLModel):
    id: UUID
    number: str
    organization_id: UUID
    organization_name: str
    kind: InvoiceKind
    ticket_id: UUID | None
    ticket_number: str | None
    period: str | None
    currency: str
    subtotal: Decimal
    tax_rate: Decimal
    tax: Decimal
    total: Decimal
    issued_at: datetime
    invoice_date: date
    due_date: date
    payment_instructions: str
    status: InvoiceStatus
    paid_at: datetime | None
    voided_at: datetime | None
    void_reason: str | None
    lines: list[InvoiceLinePublic]
    pdf_url: str


class MarkPaid(SQLModel):
    model_config = example({"paid_at": "2026-12-15T10:00:00Z"})  # type: ignore[assignment]
    paid_at: datetime | None = None


class VoidInvoice(SQLModel):
    model_config = example({"reason": "Issued to the wrong organization"})  # type: ignore[assignment]
    reason: str = Field(min_length=3, max_length=1000)


class UsageTicketPublic(SQLModel):
    ticket_id: UUID
    ticket_number: str
    billable_minutes: int
    non_billable_minutes: int


class UsageSummary(SQLModel):
    organization_id: UUID
    period: str
    starts_at: datetime
    ends_at: datetime
    timezone: str
    plan_kind: PlanKind
    increment_minutes: int = Field(description="each time entry is rounded up to this (the plan's)")
    minimum_minutes_per_ticket: int
    logged_minutes: int
    billable_minutes: int
    non_billable_minutes: int
    charged_minutes: int
    allowance: AllowancePublic | None
    invoiced_total: dict[str, Decimal]
    tickets: list[UsageTicketPublic]


class NoticePublic(SQLModel):
    organization_id: UUID
    kind: NoticeKind
    period: str | None = Field(description="the month (organization's timezone) of the close that crossed it")
    occurred_at: datetime | None = Field(description="the close's instant")
    sent_at: datetime
    threshold_percent: int | None
    used_minutes: int | None = Field(description="allowance notices: minutes used in the period")
    allowance_minutes: int | None = Field(description="allowance notices: minutes included")
    remaining_minutes: int | None = Field(description="block notices: prepaid minutes left")
    purchased_minutes: int | None = Field(description="block notices: prepaid minutes bought (usable)")
    newest_block_id: UUID | None = Field(description="block notices: the purchase they are once for")


class PreviewLine(SQLModel):
    time_entry_id: UUID | None
    description: str
    minutes: int
    charged_to: str
    amount: Decimal | None


class ClosePreview(SQLModel):
    ticket_id: UUID
    ticket_number: str
    plan_kind: PlanKind
    currency: str
    lines: list[PreviewLine]
    subtotal: Decimal
    tax: Decimal
    total: Decimal
    allowance: AllowancePublic | None
    prepaid_remaining_minutes: int | None
