"""The time every service reads: real UTC time, or real time shifted by a fixed offset.

The offset exists for whole-stack tests of time-dependent stories (a ticket logged on a Friday
evening, a month's end): the stack is started with ``HELPDESK_CLOCK_OFFSET_SECONDS`` and every
process agrees on what time it is, while time still passes. Production refuses an offset.
Access tokens and webhook timestamps keep real time: other parties check them against theirs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_offset = timedelta(0)


def set_offset(seconds: float) -> None:
    """Shift this process's clock (called once at start-up from the service's settings)."""
    global _offset
    _offset = timedelta(seconds=seconds)


def utcnow() -> datetime:
    """The current instant, timezone-aware UTC."""
    return datetime.now(UTC) + _offset
