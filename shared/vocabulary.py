"""The words services share about a ticket: its status, urgency and priority, and the
customer's support tier. ticket_api stores them, triage decides with them, the notifier and
billing read them from events. One definition, so they never drift apart."""

from __future__ import annotations

from enum import StrEnum


class Urgency(StrEnum):
    """What the customer says."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class Impact(StrEnum):
    """Who is affected."""

    PERSON = "person"
    TEAM = "team"
    ORGANIZATION = "organization"
    MANY_CUSTOMERS = "many_customers"


class Priority(StrEnum):
    """P1 is the most urgent."""

    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"

    @property
    def level(self) -> int:
        """1 for P1 … 4 for P4."""
        return int(self.value[1])

    @classmethod
    def of_level(cls, level: int) -> Priority:
        return cls(f"P{min(max(level, 1), 4)}")

    def raised(self, levels: int = 1) -> Priority:
        """More urgent by ``levels`` (negative lowers), never past P1 or P4."""
        return Priority.of_level(self.level - levels)


class TicketStatus(StrEnum):
    """Where a ticket is in its lifecycle (the allowed moves live in ticket_api's transitions)."""

    NEW = "new"
    OPEN = "open"
    PENDING_CUSTOMER = "pending_customer"
    CLOSED = "closed"


class SupportTier(StrEnum):
    """How a customer pays: by the hour, a monthly agreement, or a prepaid block."""

    HOURLY = "hourly"
    AGREEMENT = "agreement"
    BLOCK = "block"
