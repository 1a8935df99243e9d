"""What a ticket's close charges: pure arithmetic on minutes, no I/O.

Every time entry carries what it has already been charged (in billed, rounded minutes). A
close charges, for each entry that changed since it was last charged, the difference between
its rounded current minutes and what it was charged, so closing twice charges nothing twice
and a correction charges (or credits) exactly the difference. Entries that did not change keep
what they were charged, even if the plan's increment changed in between.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from uuid import UUID

from services.billing.rounding import minimum_adjustment, round_up


@dataclass(frozen=True)
class EntryState:
    time_entry_id: UUID
    minutes: int
    billable: bool
    deleted: bool
    charged: int
    changed: bool

    @property
    def billable_minutes(self) -> int:
        return self.minutes if self.billable and not self.deleted else 0


@dataclass(frozen=True)
class Delta:
    """Billed minutes to add (negative: to take back) for one entry, or for the ticket's
    minimum charge when ``time_entry_id`` is None."""

    time_entry_id: UUID | None
    minutes: int


def ticket_deltas(
    entries: Iterable[EntryState], *, increment: int, minimum: int, minimum_charged: int
) -> list[Delta]:
    """The charges closing a ticket makes now (empty when nothing is left to charge)."""
    deltas: list[Delta] = []
    billed: list[int] = []
    for entry in entries:
        if entry.changed:
            target = round_up(entry.billable_minutes, increment)
            if target != entry.charged:
                deltas.append(Delta(entry.time_entry_id, target - entry.charged))
            billed.append(target)
        else:
            billed.append(entry.charged)
    adjustment = minimum_adjustment(billed, minimum, minimum_charged)
    if adjustment:
        deltas.append(Delta(None, adjustment))
    return deltas


@dataclass(frozen=True)
class BlockBalance:
    block_id: UUID
    remaining: int


OVERAGE = "overage"
# Where charged minutes went: a block id, OVERAGE, or any other hashable key the caller uses.
Target = Hashable


def draw_from_blocks(minutes: int, blocks: Sequence[BlockBalance]) -> tuple[list[tuple[UUID, int]], int]:
    """Draw ``minutes`` from ``blocks`` (already ordered oldest first, only usable ones);
    returns the draws and what did not fit (billed as overage)."""
    if minutes < 0:
        raise ValueError("draw a positive number of minutes; give back with return_charges")
    draws: list[tuple[UUID, int]] = []
    left = minutes
    for block in blocks:
        if left == 0:
            break
        take = min(left, max(block.remaining, 0))
        if take:
            draws.append((block.block_id, take))
            left -= take
    return draws, left


def return_charges(minutes: int, previous: Sequence[tuple[Target, int]]) -> list[tuple[Target, int]]:
    """Give back ``minutes`` (positive) from an entry's earlier charges, last charged first:
    overage that was invoiced after the blocks ran dry goes back before block minutes do.

    ``previous`` lists the entry's charges in the order they were made (target, minutes).
    Returns (target, negative minutes) pairs; minutes that were never charged are not returned."""
    if minutes < 0:
        raise ValueError("give back a positive number of minutes")
    net: dict[Target, int] = {}
    order: list[Target] = []
    for target, amount in previous:
        if target not in net:
            order.append(target)
            net[target] = 0
        net[target] += amount
        # Re-charging a target after giving some back makes it the most recent again.
        order.remove(target)
        order.append(target)
    returned: list[tuple[Target, int]] = []
    left = minutes
    for target in reversed(order):
        if left == 0:
            break
        take = min(left, net[target])
        if take > 0:
            returned.append((target, -take))
            left -= take
    return returned


ALLOWANCE_THRESHOLDS = (80, 100)


def thresholds_reached(used: int, allowance: int) -> list[int]:
    """Which allowance thresholds (percent) ``used`` minutes have reached."""
    if allowance <= 0:
        return [threshold for threshold in ALLOWANCE_THRESHOLDS if used > 0]
    return [threshold for threshold in ALLOWANCE_THRESHOLDS if used * 100 >= threshold * allowance]


BLOCK_LOW = "low"
BLOCK_EXHAUSTED = "exhausted"


def block_notices(remaining: int, purchased: int, low_percent: int) -> list[str]:
    """Which prepaid-balance notices apply: ``low`` once at or below ``low_percent`` of what
    was purchased, ``exhausted`` once nothing is left."""
    notices = []
    if remaining * 100 <= low_percent * purchased:
        notices.append(BLOCK_LOW)
    if remaining <= 0:
        notices.append(BLOCK_EXHAUSTED)
    return notices
