"""Priority from urgency x impact, adjusted by the customer's support tier.

Urgency is what the customer says; impact (who is affected) is given by an agent or a portal,
or inferred from the ticket's words by :func:`infer_impact`'s rules. The matrix and the tier
adjustments are configuration (:class:`PriorityMatrix`); every result carries its breakdown.
A breached SLA raises the priority one level, once (:func:`escalation_of`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from shared.vocabulary import Impact, Priority, SupportTier, Urgency


class MatrixError(ValueError):
    """A matrix configuration that cannot work (the message says what to fix)."""


# --- impact inference ----------------------------------------------------------------------

# Widest impact first: the first rule whose phrase occurs in the subject or description wins.
IMPACT_RULES: tuple[tuple[Impact, tuple[str, ...]], ...] = (
    (
        Impact.MANY_CUSTOMERS,
        (
            "all customers",
            "all our customers",
            "many customers",
            "our customers",
            "our clients",
            "customers cannot",
            "customers can't",
            "customers are unable",
            "public website",
            "online shop",
            "web shop",
            "webshop",
        ),
    ),
    (
        Impact.ORGANIZATION,
        (
            "everyone",
            "everybody",
            "nobody can",
            "no one can",
            "all users",
            "all staff",
            "all employees",
            "whole company",
            "entire company",
            "whole office",
            "entire office",
            "whole organization",
            "entire organization",
            "company-wide",
            "company wide",
            "organization-wide",
            "site is down",
            "network is down",
            "server is down",
            "email is down",
        ),
    ),
    (
        Impact.TEAM,
        (
            "our team",
            "the team",
            "department",
            "colleagues",
            "several users",
            "several people",
            "some users",
            "a few users",
            "we cannot",
            "we can't",
            "we are unable",
            "shared printer",
            "office printer",
            "shared drive",
        ),
    ),
)

_RULE_PATTERNS = tuple(
    (impact, tuple((phrase, re.compile(rf"(?<!\w){re.escape(phrase)}(?!\w)")) for phrase in phrases))
    for impact, phrases in IMPACT_RULES
)


@dataclass(frozen=True)
class ImpactAssessment:
    impact: Impact
    source: str  # "stated" | "inferred"
    reason: str


def infer_impact(subject: str, description: str | None) -> ImpactAssessment:
    """Who is affected, judged from the ticket's words (case-insensitive whole phrases).

    The first matching rule of :data:`IMPACT_RULES`, widest impact first; one person when
    nothing matches. The reason names the phrase that decided."""
    text = f"{subject}\n{description or ''}".lower()
    for impact, patterns in _RULE_PATTERNS:
        for phrase, pattern in patterns:
            if pattern.search(text):
                return ImpactAssessment(impact, "inferred", f"the ticket mentions {phrase!r}")
    return ImpactAssessment(Impact.PERSON, "inferred", "no wider impact mentioned: one person")


def assess_impact(stated: str | None, subject: str, description: str | None) -> ImpactAssessment:
    """The stated impact when given, else the inferred one."""
    if stated:
        return ImpactAssessment(Impact(stated), "stated", "impact given on the ticket")
    return infer_impact(subject, description)


# --- the matrix -------------------------------------------------------------------------------

DEFAULT_CELLS: dict[Urgency, dict[Impact, Priority]] = {
    Urgency.CRITICAL: {
        Impact.PERSON: Priority.P2,
        Impact.TEAM: Priority.P1,
        Impact.ORGANIZATION: Priority.P1,
        Impact.MANY_CUSTOMERS: Priority.P1,
    },
    Urgency.HIGH: {
        Impact.PERSON: Priority.P2,
        Impact.TEAM: Priority.P2,
        Impact.ORGANIZATION: Priority.P1,
        Impact.MANY_CUSTOMERS: Priority.P1,
    },
    Urgency.MEDIUM: {
        Impact.PERSON: Priority.P3,
        Impact.TEAM: Priority.P3,
        Impact.ORGANIZATION: Priority.P2,
        Impact.MANY_CUSTOMERS: Priority.P2,
    },
    Urgency.LOW: {
        Impact.PERSON: Priority.P4,
        Impact.TEAM: Priority.P4,
        Impact.ORGANIZATION: Priority.P3,
        Impact.MANY_CUSTOMERS: Priority.P3,
    },
}
# Levels a tier raises (positive) or lowers (negative) the matrix's priority.
DEFAULT_TIER_ADJUSTMENTS: dict[str, int] = {
    SupportTier.AGREEMENT: 1,
    SupportTier.HOURLY: 0,
    SupportTier.BLOCK: 0,
}


@dataclass(frozen=True)
class PriorityBreakdown:
    urgency: Urgency
    impact: Impact
    impact_source: str
    impact_reason: str
    matrix_priority: Priority
    support_tier: str | None
    tier_adjustment: int
    priority: Priority

    def as_dict(self) -> dict[str, Any]:
        return {
            "urgency": self.urgency.value,
            "impact": self.impact.value,
            "impact_source": self.impact_source,
            "impact_reason": self.impact_reason,
            "matrix_priority": self.matrix_priority.value,
            "support_tier": self.support_tier,
            "tier_adjustment": self.tier_adjustment,
            "priority": self.priority.value,
        }


@dataclass(frozen=True)
class PriorityMatrix:
    cells: Mapping[Urgency, Mapping[Impact, Priority]]
    tier_adjustments: Mapping[str, int]

    @classmethod
    def default(cls) -> PriorityMatrix:
        return cls(DEFAULT_CELLS, DEFAULT_TIER_ADJUSTMENTS)

    @classmethod
    def from_config(
        cls, cells: Mapping[str, Mapping[str, str]], tier_adjustments: Mapping[str, int]
    ) -> PriorityMatrix:
        """Validate a configuration: every urgency x impact cell set to P1-P4, adjustments
        between -3 and 3. Raises :class:`MatrixError` naming what is wrong."""
        parsed: dict[Urgency, dict[Impact, Priority]] = {}
        for urgency_name, row in cells.items():
            try:
                urgency = Urgency(urgency_name)
            except ValueError:
                raise MatrixError(f"unknown urgency {urgency_name!r}; use {_names(Urgency)}") from None
            parsed[urgency] = {}
            for impact_name, priority_name in row.items():
                try:
                    impact = Impact(impact_name)
                except ValueError:
                    raise MatrixError(f"unknown impact {impact_name!r}; use {_names(Impact)}") from None
                try:
                    parsed[urgency][impact] = Priority(priority_name)
                except ValueError:
                    cell = f"{urgency.value} x {impact.value}"
                    raise MatrixError(f"{cell}: {priority_name!r} is not one of {_names(Priority)}") from None
        missing = [f"{u.value} x {i.value}" for u in Urgency for i in Impact if i not in parsed.get(u, {})]
        if missing:
            raise MatrixError(f"the matrix needs every cell; missing {', '.join(missing)}")
        for tier, levels in tier_adjustments.items():
            if isinstance(levels, bool) or not isinstance(levels, int) or not -3 <= levels <= 3:
                raise MatrixError(f"tier {tier!r}: adjustment must be a whole number of levels from -3 to 3")
        return cls(parsed, dict(tier_adjustments))

    def to_config(self) -> dict[str, Any]:
        return {
            "cells": {u.value: {i.value: p.value for i, p in row.items()} for u, row in self.cells.items()},
            "tier_adjustments": dict(self.tier_adjustments),
        }

    def prioritize(
        self, urgency: str, assessment: ImpactAssessment, support_tier: str | None
    ) -> PriorityBreakdown:
        """Matrix cell for urgency x impact, then raised/lowered by the tier's adjustment."""
        urgency_value = Urgency(urgency)
        base = self.cells[urgency_value][assessment.impact]
        adjustment = self.tier_adjustments.get(support_tier, 0) if support_tier else 0
        return PriorityBreakdown(
            urgency=urgency_value,
            impact=assessment.impact,
            impact_source=assessment.source,
            impact_reason=assessment.reason,
            matrix_priority=base,
            support_tier=support_tier,
            tier_adjustment=adjustment,
            priority=base.raised(adjustment),
        )


def _names(enum: type[StrEnum]) -> str:
    return ", ".join(repr(member.value) for member in enum)


def escalation_of(priority: str | None, *, already_escalated: bool) -> str | None:
    """The priority a breach raises the ticket to: one level up, once per ticket (a ticket
    missing both targets is raised once, not twice), and none for a P1 (nothing is higher)."""
    if priority is None or already_escalated:
        return None
    raised = Priority(priority).raised(1)
    return raised.value if raised.value != priority else None
