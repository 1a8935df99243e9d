"""How logged minutes become billed minutes: the plan's increment and minimum per ticket.

Each time entry is rounded up to the increment on its own (45 min at 15 → 45, 46 → 60), so a
later correction of one entry never changes what another was billed. A ticket whose rounded
entries add up to less than the plan's minimum is billed the minimum (only when there was
some billable time at all).
"""

from __future__ import annotations

from collections.abc import Iterable


def round_up(minutes: int, increment: int) -> int:
    """``minutes`` rounded up to a whole number of ``increment`` (0 stays 0)."""
    if increment < 1:
        raise ValueError("the billing increment is at least one minute")
    if minutes < 0:
        raise ValueError("logged minutes are never negative")
    return -(-minutes // increment) * increment


def ticket_target(rounded_entries: Iterable[int], minimum: int) -> int:
    """What a ticket should have been billed in all: its rounded entries, at least the minimum."""
    total = sum(rounded_entries)
    return max(total, minimum) if total > 0 else 0


def minimum_adjustment(rounded_entries: Iterable[int], minimum: int, already_adjusted: int) -> int:
    """The minimum-charge minutes to add (or take back) so the ticket's bill reaches its target.

    ``already_adjusted`` is what earlier closes billed as minimum charge for this ticket."""
    entries = list(rounded_entries)
    return ticket_target(entries, minimum) - sum(entries) - already_adjusted
