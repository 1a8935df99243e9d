"""billing's tables (the API's request and response schemas are in ``schemas.py``).

Money is stored as whole cents (``*_cents`` columns, integers) and read as ``Decimal``; tax
rates as parts per million. Both are exact on every database, SQLite included.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from uuid import UUID

from sqlalchemy import BigInteger, Index, Text, UniqueConstraint, text
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from services.billing.money import from_cents, from_ppm
from shared.consumer import processed_event_table
from shared.db import UtcDateTime, timestamp
from shared.idempotency import IdempotencyStore, idempotency_table
from shared.ids import new_id
from shared.outbox import outbox_table


class Base(SQLModel, registry=registry()):
    """Every billing table hangs off this metadata (and no other service's)."""


metadata = Base.metadata
outbox = outbox_table(metadata)
processed_event = processed_event_table(metadata)
idempotency_record = idempotency_table(metadata)
IDEMPOTENCY = IdempotencyStore(idempotency_record)


# --- enums -------------------------------------------------------------------------------


class PlanKind(StrEnum):
    HOURLY = "hourly"
    AGREEMENT = "agreement"
    BLOCK = "block"


class UsageKind(StrEnum):
    USAGE = "usage"
    REVERSAL = "reversal"


class ChargeKind(StrEnum):
    HOURLY = "hourly"  # invoiced at the hourly rate at close
    ALLOWANCE = "allowance"  # drawn from an agreement's monthly allowance
    BLOCK = "block"  # drawn from a prepaid block
    BLOCK_OVERAGE = "block_overage"  # invoiced at the overage rate when the blocks ran dry


class InvoiceKind(StrEnum):
    TICKET = "ticket"  # at a ticket's close (hourly time, or block overage)
    PERIOD_OVERAGE = "period_overage"  # at an agreement's period close


class InvoiceStatus(StrEnum):
    ISSUED = "issued"
    PAID = "paid"
    VOID = "void"


# A notice sent once per account and scope (a period, a purchase). No docstring: it would
# become the OpenAPI schema's description.
class NoticeKind(StrEnum):
    ALLOWANCE_80 = "allowance.80"
    ALLOWANCE_100 = "allowance.100"
    BLOCK_LOW = "block.low"
    BLOCK_EXHAUSTED = "block.exhausted"


# --- accounts and plans ------------------------------------------------------------------


class BillingAccount(Base, table=True):
    """One per organization, from its organization.* events (billing's own projection)."""

    __tablename__ = "billing_account"
    organization_id: UUID = Field(primary_key=True)
    name: str = Field(max_length=200)
    support_tier: str = Field(max_length=16)
    timezone: str = Field(max_length=64)
    billing_email: str | None = Field(default=None, max_length=320)
    # The organization's billing and primary contact (from its events): whom notices and
    # invoices go to without a billing address (services/billing/recipients.py).
    billing_contact_email: str | None = Field(default=None, max_length=320)
    primary_contact_email: str | None = Field(default=None, max_length=320)
    # The last period whose close ran for this account (``2026-11``), None before the first.
    closed_through: str | None = Field(default=None, max_length=7)
    # The earliest event time the account was seen at: its first period to close (None on
    # accounts from before this column: their ``created_at`` stands in).
    opened_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # When the organization's producer made the state we hold (older events are ignored).
    source_changed_at: datetime = Field(sa_type=UtcDateTime, nullable=False)
    created_at: datetime = timestamp()
    updated_at: datetime = timestamp()


class BillingPlan(Base, table=True):
    """A version of an account's plan: it applies from ``effective_from`` (a local date) until
    a later version's date. Versions are never changed, only added."""

    __tablename__ = "billing_plan"
    __table_args__ = (UniqueConstraint("organization_id", "version", name="uq_billing_plan_version"),)

    id: UUID = Field(default_factory=new_id, primary_key=True)
    organization_id: UUID = Field(index=True)
    version: int
    kind: str = Field(max_length=16)
    effective_from: date
    currency: str = Field(max_length=3)
    rate_per_hour_cents: int = Field(sa_type=BigInteger)
    increment_minutes: int
    minimum_minutes_per_ticket: int
    tax_rate_ppm: int
    payment_terms_days: int
    allowance_minutes: int = 0
    overage_rate_per_hour_cents: int = Field(default=0, sa_type=BigInteger)
    # block.low once the prepaid balance is at or below this share of the minutes bought.
    block_low_threshold_percent: int = Field(default=20, sa_column_kwargs={"server_default": "20"})
    created_by: str = Field(max_length=100)
    created_at: datetime = timestamp()

    @property
    def rate_per_hour(self) -> Decimal:
        return from_cents(self.rate_per_hour_cents)

    @property
    def overage_rate_per_hour(self) -> Decimal:
        return from_cents(self.overage_rate_per_hour_cents)

    @property
    def tax_rate(self) -> Decimal:
        return from_ppm(self.tax_rate_ppm)


class PrepaidBlock(Base, table=True):
    __tablename__ = "prepaid_block"
    __table_args__ = (Index("ix_prepaid_block_organization_id_id", "organization_id", "id"),)

    id: UUID = Field(default_factory=new_id, primary_key=True)
    organization_id: UUID
    minutes: int
    purchased_at: datetime = Field(sa_type=UtcDateTime, nullable=False)
    expires_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    reference: str = Field(default="", max_length=200)
    created_by: str = Field(max_length=100)
    created_at: datetime = timestamp()


# --- projections of ticket_api's tickets and time entries ------------------------------------


class TicketState(Base, table=True):
    """What billing knows of a ticket: its newest known status and a close awaiting charge."""

    __tablename__ = "ticket"
    __table_args__ = (
        Index(
            "ix_ticket_settle_due_at",
            "settle_due_at",
            postgresql_where=text("settle_due_at IS NOT NULL"),
            sqlite_where=text("settle_due_at IS NOT NULL"),
        ),
        Index("ix_ticket_organization_id", "organization_id"),
    )

    ticket_id: UUID = Field(primary_key=True)
    organization_id: UUID | None = None
    number: str = Field(max_length=32)
    status: str = Field(max_length=32)
    # When the producer made the status we hold (older news is ignored).
    status_at: datetime = Field(sa_type=UtcDateTime, nullable=False)
    closed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    contact_email: str | None = Field(default=None, max_length=320)
    # Set by a close; the close is charged at this time and the mark cleared.
    settle_due_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class TimeEntryState(Base, table=True):
    """The newest revision of each time entry billing has seen."""

    __tablename__ = "time_entry"
    __table_args__ = (
        Index("ix_time_entry_ticket_id", "ticket_id"),
        Index(
            "ix_time_entry_needs_charge",
            "organization_id",
            postgresql_where=text("needs_charge"),
            sqlite_where=text("needs_charge"),
        ),
    )

    time_entry_id: UUID = Field(primary_key=True)
    organization_id: UUID
    ticket_id: UUID
    ticket_number: str = Field(max_length=32)
    revision: int
    agent_id: UUID
    minutes: int
    billable: bool
    deleted: bool
    started_at: datetime = Field(sa_type=UtcDateTime, nullable=False)
    description: str = Field(default="", sa_type=Text)
    changed_at: datetime = Field(sa_type=UtcDateTime, nullable=False)
    # Changed since it was last charged: the next close (or period close) looks at it.
    needs_charge: bool = True


# --- the ledgers ---------------------------------------------------------------------------


class UsageEntry(Base, table=True):
    """The usage ledger: append-only. A time entry's revision adds its minutes once; the next
    revision first reverses them (a negative entry), never edits them."""

    __tablename__ = "usage_entry"
    __table_args__ = (
        UniqueConstraint("time_entry_id", "revision", "kind", name="uq_usage_entry_revision_kind"),
        Index("ix_usage_entry_organization_id_id", "organization_id", "id"),
        Index("ix_usage_entry_organization_id_started_at", "organization_id", "started_at"),
    )

    id: UUID = Field(default_factory=new_id, primary_key=True)
    organization_id: UUID
    time_entry_id: UUID
    revision: int
    kind: str = Field(max_length=16)
    ticket_id: UUID
    ticket_number: str = Field(max_length=32)
    agent_id: UUID
    minutes: int
    billable: bool
    started_at: datetime = Field(sa_type=UtcDateTime, nullable=False)
    changed_at: datetime = Field(sa_type=UtcDateTime, nullable=False)
    recorded_at: datetime = timestamp()


class Charge(Base, table=True):
    """The charge ledger: append-only. Billed (rounded) minutes charged for a time entry, or for
    a ticket's minimum charge (``time_entry_id`` None), and where they went: an hourly invoice,
    a period's allowance, a prepaid block, or block overage on an invoice."""

    __tablename__ = "charge"
    __table_args__ = (
        Index("ix_charge_time_entry_id", "time_entry_id"),
        Index("ix_charge_ticket_id", "ticket_id"),
        Index("ix_charge_organization_id_period_key", "organization_id", "period_key"),
        Index("ix_charge_block_id", "block_id"),
        Index("ix_charge_invoice_id", "invoice_id"),
    )

    id: UUID = Field(default_factory=new_id, primary_key=True)
    organization_id: UUID
    ticket_id: UUID
    ticket_number: str = Field(max_length=32)
    time_entry_id: UUID | None = None
    kind: str = Field(max_length=16)
    minutes: int
    period_key: str | None = Field(default=None, max_length=7)
    block_id: UUID | None = None
    invoice_id: UUID | None = None
    # The hourly rate invoiced minutes were charged at, so a later credit mirrors it exactly.
    rate_per_hour_cents: int | None = Field(default=None, sa_type=BigInteger)
    charged_at: datetime = Field(sa_type=UtcDateTime, nullable=False)


# --- invoices ------------------------------------------------------------------------------


class InvoiceCounter(Base, table=True):
    """The last invoice number issued in a year: updated in the invoice's own transaction, so
    numbers have no gaps (a rolled-back invoice rolls its number back too)."""

    __tablename__ = "invoice_counter"
    year: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    last_number: int


class Invoice(Base, table=True):
    __tablename__ = "invoice"
    __table_args__ = (
        # An agreement's period is invoiced once, however many workers run the period close.
        UniqueConstraint("organization_id", "period_key", name="uq_invoice_organization_period"),
        Index("ix_invoice_organization_id_id", "organization_id", "id"),
    )

    id: UUID = Field(default_factory=new_id, primary_key=True)
    number: str = Field(max_length=32, unique=True)
    organization_id: UUID
    organization_name: str = Field(max_length=200)
    kind: str = Field(max_length=16)
    ticket_id: UUID | None = None
    ticket_number: str | None = Field(default=None, max_length=32)
    period_key: str | None = Field(default=None, max_length=7)
    currency: str = Field(max_length=3)
    subtotal_cents: int = Field(sa_type=BigInteger)
    tax_rate_ppm: int
    tax_cents: int = Field(sa_type=BigInteger)
    total_cents: int = Field(sa_type=BigInteger)
    issued_at: datetime = Field(sa_type=UtcDateTime, nullable=False)
    invoice_date: date
    due_date: date
    payment_instructions: str = Field(sa_type=Text)
    bill_to_email: str | None = Field(default=None, max_length=320)
    status: str = Field(default=InvoiceStatus.ISSUED, max_length=16)
    paid_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    voided_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    void_reason: str | None = Field(default=None, max_length=1000)

    @property
    def subtotal(self) -> Decimal:
        return from_cents(self.subtotal_cents)

    @property
    def tax(self) -> Decimal:
        return from_cents(self.tax_cents)

    @property
    def total(self) -> Decimal:
        return from_cents(self.total_cents)

    @property
    def tax_rate(self) -> Decimal:
        return from_ppm(self.tax_rate_ppm)


class InvoiceLine(Base, table=True):
    __tablename__ = "invoice_line"
    __table_args__ = (Index("ix_invoice_line_invoice_id_position", "invoice_id", "position"),)

    id: UUID = Field(default_factory=new_id, primary_key=True)
    invoice_id: UUID
    position: int
    description: str = Field(max_length=500)
    ticket_number: str | None = Field(default=None, max_length=32)
    time_entry_id: UUID | None = None
    work_date: date | None = None
    minutes: int
    rate_per_hour_cents: int = Field(sa_type=BigInteger)
    amount_cents: int = Field(sa_type=BigInteger)

    @property
    def rate_per_hour(self) -> Decimal:
        return from_cents(self.rate_per_hour_cents)

    @property
    def amount(self) -> Decimal:
        return from_cents(self.amount_cents)


class Notice(Base, table=True):
    """A notice sent once: (organization, ``allowance.80``, ``2026-11``) or
    (organization, ``block.low``, <newest block id>). The key is the "once"; the rest is what
    the notice said, as ``GET /notices`` shows it (None on notices from before they were kept)."""

    __tablename__ = "billing_notice"
    organization_id: UUID = Field(primary_key=True)
    notice: str = Field(primary_key=True, max_length=40)
    scope: str = Field(primary_key=True, max_length=64)
    sent_at: datetime = timestamp()
    # The period (in the organization's timezone) of the close that crossed the threshold.
    period_key: str | None = Field(default=None, max_length=7)
    # The close's instant (a ticket's close, or the end of the period being closed).
    occurred_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # allowance: minutes used and included; block: minutes left and bought.
    minutes: int | None = None
    of_minutes: int | None = None
    threshold_percent: int | None = None
