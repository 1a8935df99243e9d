from __future__ import annotations

from datetime import time
from pathlib import Path
from typing import ClassVar

from pydantic import AliasChoices, Field

from shared.settings import ServiceSettings, common, service_config


class Settings(ServiceSettings):
    service_name: ClassVar[str] = "ticket_api"
    model_config = service_config("TICKET_API_")

    idempotency_ttl_hours: int = Field(48, ge=24, description="how long Idempotency-Key answers are replayed")
    jwt_keys_dir: Path | None = Field(None, description="Ed25519 signing keys; default <var_dir>/keys")
    access_token_ttl_seconds: int = Field(900, ge=60, le=24 * 3600)
    refresh_token_ttl_days: int = Field(30, ge=1, le=365)
    sign_in_link_ttl_minutes: int = Field(15, ge=1, le=24 * 60)
    customer_token_ttl_seconds: int = Field(3600, ge=60, le=24 * 3600)
    company_name: str = Field(
        "Helpdesk Consulting",
        validation_alias=AliasChoices("TICKET_API_COMPANY_NAME", "NOTIFIER_COMPANY_NAME"),
        description="who the customer pages speak for (the ticket-status page behind mail links)",
    )
    # --- inbound email (services/ticket_api/inbound/) ---
    support_address: str = Field(
        "support@helpdesk.test",
        validation_alias=AliasChoices("TICKET_API_SUPPORT_ADDRESS", "NOTIFIER_SUPPORT_ADDRESS"),
        description="where customers write; its plus-addresses carry reply tokens",
    )
    inbound_own_addresses: list[str] = Field(
        default_factory=lambda: ["accounting@helpdesk.test"],
        description="other addresses we send from: mail from them is a loop, never a ticket",
    )
    inbound_accepted_domains: list[str] = Field(
        default_factory=list, description="recipient domains the SMTP listener takes; empty: support's"
    )
    inbound_smtp_host: str = "127.0.0.1"
    inbound_smtp_port: int = common("inbound_smtp_port", 2525, ge=1, le=65535)
    inbound_max_message_bytes: int = Field(26 * 1024 * 1024, ge=64 * 1024, description="the gateway's 26m")
    inbound_parse_timeout_seconds: float = Field(10.0, gt=0, le=120)
    inbound_raw_retention_days: int = Field(
        365,
        ge=0,
        description="raw copies of inbound mail are deleted after this many days (the ticket, its "
        "messages and attachments stay; mail flagged for review keeps its copy); 0: kept forever",
    )
    reopen_window_days: int = Field(14, ge=0, le=365, description="a reply reopens a closed ticket this long")
    attachment_max_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    attachment_max_count: int = Field(20, ge=0, le=500)
    attachment_max_total_bytes: int = Field(18 * 1024 * 1024, ge=1024, description="base64 adds a third")
    attachments_dir: Path | None = Field(None, description="default <var_dir>/attachments")
    ack_limit_per_sender: int = Field(5, ge=1, description="acknowledged new tickets per sender per window")
    ack_limit_window_minutes: int = Field(60, ge=1)
    appointment_slot_minutes: int = Field(30, ge=5, le=240, description="the booking grid")
    appointment_min_lead_minutes: int = Field(60, ge=0, description="how soon a slot may start")
    appointment_horizon_days: int = Field(60, ge=1, le=365, description="how far ahead one may book")
    appointment_cancel_notice_hours: int = Field(24, ge=0, le=24 * 14)
    appointment_customer_hours: tuple[time, time] = Field(
        (time(7, 0), time(21, 0)),
        description="slots offered to a customer lie within these local hours of their timezone",
    )
    appointment_policy: str = Field(
        "Appointments can be rescheduled or cancelled free of charge until {notice_hours} hours before "
        "they start. Later cancellations and missed appointments may be billed as scheduled.",
        description="quoted in every confirmation; {notice_hours} is filled in",
    )

    @property
    def appointment_policy_text(self) -> str:
        return self.appointment_policy.format(notice_hours=self.appointment_cancel_notice_hours)

    @property
    def keys_dir(self) -> Path:
        return self.jwt_keys_dir or self.var_dir / "keys"

    @property
    def attachment_store_dir(self) -> Path:
        return self.attachments_dir or self.var_dir / "attachments"
