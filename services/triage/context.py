"""What a triage step needs beyond the database: the share of a target at which the SLA
warning goes out, and a clock (tests pin it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from shared.clock import utcnow

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Context:
    warning_share: float = 0.8
    clock: Clock = utcnow
