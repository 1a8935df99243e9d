"""Brute-force protection for sign-in: after a few failures for one account (or one address),
further attempts are refused for a growing while (1 s, 2 s, 4 s … up to 15 minutes).

State lives in Redis so every API process sees the same counts.
"""

from __future__ import annotations

from redis.asyncio import Redis

from shared.problems import Problem

FREE_ATTEMPTS = 5
WINDOW_SECONDS = 15 * 60
MAX_LOCK_SECONDS = 15 * 60
PREFIX = "helpdesk:signin:"


class TooManyAttempts(Problem):
    status, slug, title = 429, "too-many-attempts", "Too many failed attempts"


def lock_seconds(failures: int) -> int:
    """How long to refuse attempts after ``failures`` consecutive failures."""
    if failures < FREE_ATTEMPTS:
        return 0
    return int(min(2 ** (failures - FREE_ATTEMPTS), MAX_LOCK_SECONDS))


class Lockout:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def check(self, *subjects: str) -> None:
        """Raise 429 (with Retry-After) while any of ``subjects`` is locked."""
        ttls = [await self.redis.pttl(f"{PREFIX}lock:{subject}") for subject in subjects]
        wait = max(ttls, default=0)
        if wait > 0:
            seconds = max(1, -(-wait // 1000))
            raise TooManyAttempts(
                f"Too many failed attempts; try again in {seconds} s.", headers={"Retry-After": str(seconds)}
            )

    async def failed(self, *subjects: str) -> None:
        for subject in subjects:
            key = f"{PREFIX}failures:{subject}"
            failures = int(await self.redis.incr(key))
            await self.redis.expire(key, WINDOW_SECONDS)
            if seconds := lock_seconds(failures):
                await self.redis.set(f"{PREFIX}lock:{subject}", "1", ex=seconds)

    async def succeeded(self, *subjects: str) -> None:
        for subject in subjects:
            await self.redis.delete(f"{PREFIX}failures:{subject}", f"{PREFIX}lock:{subject}")

    async def limit(self, subject: str, *, per_hour: int) -> None:
        """Count a request for ``subject``; past ``per_hour`` in the current hour, refuse (429)."""
        key = f"{PREFIX}requests:{subject}"
        count = int(await self.redis.incr(key))
        if count == 1:
            await self.redis.expire(key, 3600)
        if count > per_hour:
            wait = max(1, int(await self.redis.ttl(key)))
            raise TooManyAttempts(
                f"Too many requests; try again in {wait} s.", headers={"Retry-After": str(wait)}
            )
