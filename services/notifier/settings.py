from __future__ import annotations

from datetime import date, time
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from services.notifier.office_hours import OfficeHours
from shared.closed_days import ClosedDays
from shared.settings import ServiceSettings, common, service_config

WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Settings(ServiceSettings):
    service_name: ClassVar[str] = "notifier"
    model_config = service_config("NOTIFIER_")

    # --- outgoing mail relay ---
    smtp_host: str = common("smtp_host", "127.0.0.1")
    smtp_port: int = common("smtp_port", 1025, ge=1, le=65535)
    smtp_security: Literal["none", "starttls", "tls"] = Field(
        "none", description="none (local sink), starttls (port 587) or tls (implicit, port 465)"
    )
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_validate_certs: bool = True
    smtp_timeout_seconds: float = Field(15.0, gt=0, le=25)
    # --- who the mail is from ---
    company_name: str = "Helpdesk Consulting"
    company_postal_address: str = "100 Example Avenue, Chicago, IL 60601"
    company_phone: str = "+1 312 555 0100"
    support_address: str = "support@helpdesk.test"
    accounting_address: str = "accounting@helpdesk.test"
    team_address: str = Field(
        "team@helpdesk.test", description="leads: unassigned tickets, SLA breaches; empty: nobody"
    )
    # --- office hours the acknowledgment states; its promise is triage's SLA, these are the fallback ---
    office_timezone: str = "America/Chicago"
    office_opens: time = time(9, 0)
    office_closes: time = time(17, 0)
    office_days: str = "mon,tue,wed,thu,fri"
    office_holidays: list[date] = Field(default_factory=list)
    office_holiday_country: str | None = Field(
        "US", description="public holidays of this country close the office"
    )
    office_holiday_subdivision: str | None = None
    first_response_business_hours: int = Field(4, ge=1, le=40)
    ack_wait_for_triage_seconds: float = Field(
        3.0,
        ge=0,
        le=60,
        description="how long an acknowledgment waits for triage's SLA decision before it goes out "
        "with the office-hours estimate above (sent at once when triage decides); 0: never waits",
    )
    # --- links in mail ---
    ticket_url_template: str = Field(
        "{base}/api/v1/tickets/by-number/{number}",
        description="where staff open a ticket ({base}, {number}); internal mail links here",
    )
    ticket_status_url_template: str = Field(
        "{base}/api/v1/ticket-status/{token}",
        description="the page customers follow from our mail ({base}; {token}: per ticket and contact)",
    )
    ticket_status_link_days: int = Field(180, ge=1, le=730)
    booking_url_template: str = Field(
        "{base}/api/v1/ticket-status/{token}/appointment",
        description="where customers pick a time; {base}, {token} (as above), {ticket_id}, {agent_id}",
    )
    feedback_link_days: int = Field(30, ge=1, le=365)
    sla_document_path: Path | None = Field(None, description="a PDF to attach; unset: a generated one")
    # --- billing's API (invoice PDFs), called with this service's own client (client_id/secret) ---
    billing_base_url: str = "http://127.0.0.1:8104"
    # --- delivery ---
    email_max_attempts: int = Field(10, ge=1, le=50)
    webhook_timeout_seconds: float = Field(15.0, ge=1, le=25)
    webhook_allow_private_addresses: bool = Field(
        False, description="deliver webhooks to loopback/private addresses (tests, local runs only)"
    )
    sweep_interval_seconds: float = Field(2.0, gt=0)

    @model_validator(mode="after")
    def _no_private_webhooks_in_production(self) -> Settings:
        if self.env == "prod" and self.webhook_allow_private_addresses:
            raise ValueError(
                "NOTIFIER_WEBHOOK_ALLOW_PRIVATE_ADDRESSES is for tests and local runs: in production a "
                "portal could make us call our own network"
            )
        return self

    @field_validator("office_days")
    @classmethod
    def _check_days(cls, value: str) -> str:
        days = [d.strip().lower() for d in value.split(",") if d.strip()]
        unknown = [d for d in days if d not in WEEKDAY_NAMES]
        if unknown or not days:
            raise ValueError(f"office_days: comma-separated names from {', '.join(WEEKDAY_NAMES)}")
        return ",".join(days)

    @property
    def mail_domain(self) -> str:
        return self.support_address.rpartition("@")[2]

    def office_hours(self, timezone: str | None = None) -> OfficeHours:
        return OfficeHours(
            timezone=timezone or self.office_timezone,
            opens=self.office_opens,
            closes=self.office_closes,
            weekdays=frozenset(WEEKDAY_NAMES.index(d) for d in self.office_days.split(",")),
            holidays=frozenset(self.office_holidays),
            public_holidays=ClosedDays(
                timezone=timezone or self.office_timezone,
                holiday_country=self.office_holiday_country or None,
                holiday_subdivision=self.office_holiday_subdivision or None,
            ),
        )
