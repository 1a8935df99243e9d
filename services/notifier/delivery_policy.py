"""When to try a delivery again, and what an HTTP answer means for a webhook."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

# After the first attempt, wait this long before each retry (the Standard Webhooks providers'
# schedule): 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h — about 27.6 hours in all.
WEBHOOK_RETRY_DELAYS = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
WEBHOOK_MAX_ATTEMPTS = len(WEBHOOK_RETRY_DELAYS) + 1
JITTER = 0.2
# A claimed mail or delivery is held this long: longer than a job may run (30 s), so a live
# attempt keeps its row and a dead one's row is taken again.
LEASE = timedelta(seconds=60)
MAX_RETRY_AFTER = timedelta(hours=24)


def webhook_retry_delay(attempts_made: int, rng: random.Random | None = None) -> timedelta | None:
    """The wait after ``attempts_made`` failed attempts, ±20 % jitter; ``None``: give up."""
    if attempts_made < 1 or attempts_made > len(WEBHOOK_RETRY_DELAYS):
        return None
    base = WEBHOOK_RETRY_DELAYS[attempts_made - 1]
    factor = 1 + (rng or random).uniform(-JITTER, JITTER)
    return base * factor


def email_retry_delay(attempts_made: int) -> timedelta:
    """30 s, 1, 2, 4 … minutes, at most an hour between attempts."""
    return min(timedelta(seconds=30 * 2 ** max(attempts_made - 1, 0)), timedelta(hours=1))


def retry_after(value: str | None, now: datetime) -> timedelta | None:
    """A ``Retry-After`` header (seconds or an HTTP date) as a wait, capped at 24 h."""
    if not value:
        return None
    value = value.strip()
    wait: timedelta | None
    if value.isdigit():
        wait = timedelta(seconds=int(value))
    else:
        try:
            wait = parsedate_to_datetime(value) - now
        except (TypeError, ValueError):
            return None
    return max(min(wait, MAX_RETRY_AFTER), timedelta(0))


def is_success(status: int) -> bool:
    return 200 <= status < 300


def disables_endpoint(status: int) -> bool:
    """410 Gone: the receiver says this endpoint is no more."""
    return status == 410
