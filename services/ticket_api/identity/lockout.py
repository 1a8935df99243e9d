"""Brute-force protection for sign-in: after a few failures for one account (or one address),
further attempts are refused for a growing while (1 s, 2 s, 4 s … up to 15 minutes).

The counts live in the database (``sign_in_counter``), so every API process sees the same ones
and a Redis restart forgets none. They are written in the request's unit of work, which the
failing paths commit before they refuse: a refused attempt still counts.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy import case, delete, select, update

from services.ticket_api.identity.models import SignInCounter
from shared.clock import utcnow
from shared.db import dialect_of, insert_ignoring_conflicts
from shared.problems import Problem
from shared.uow import UnitOfWork

FREE_ATTEMPTS = 5
WINDOW_SECONDS = 15 * 60
MAX_LOCK_SECONDS = 15 * 60
LIMIT_PREFIX = "limit:"

_table = SignInCounter.__table__  # type: ignore[attr-defined]
_subject, _count, _window, _locked = (
    _table.c.subject,
    _table.c.count,
    _table.c.window_ends_at,
    _table.c.locked_until,
)


class TooManyAttempts(Problem):
    status, slug, title = 429, "too-many-attempts", "Too many failed attempts"


def lock_seconds(failures: int) -> int:
    """How long to refuse attempts after ``failures`` consecutive failures."""
    if failures < FREE_ATTEMPTS:
        return 0
    return int(min(2 ** (failures - FREE_ATTEMPTS), MAX_LOCK_SECONDS))


def _seconds_until(moment: datetime, now: datetime) -> int:
    return max(1, math.ceil((moment - now).total_seconds()))


class Lockout:
    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self._counted: set[str] = set()  # subjects check() found a count for

    async def _bump(
        self, subject: str, *, now: datetime, window: timedelta, sliding: bool
    ) -> tuple[int, datetime]:
        """Add one to ``subject``'s count (from 1 again once its window ended); returns the new
        count and the window's end. ``sliding``: each hit moves the window's end."""
        session = self.uow.session
        insert = insert_ignoring_conflicts(_table, dialect_of(session), "subject")
        await session.execute(insert, {"subject": subject, "count": 0, "window_ends_at": now + window})
        current = _window > now
        row = (
            await session.execute(
                update(_table)
                .where(_subject == subject)
                .values(
                    count=case((current, _count + 1), else_=1),
                    window_ends_at=now + window if sliding else case((current, _window), else_=now + window),
                )
                .returning(_count, _window)
            )
        ).one()
        return int(row[0]), row[1]

    async def check(self, *subjects: str) -> None:
        """Raise 429 (with Retry-After) while any of ``subjects`` is locked."""
        now = utcnow()
        rows = (await self.uow.session.execute(select(_subject, _locked).where(_subject.in_(subjects)))).all()
        self._counted = {row.subject for row in rows}
        locks = [row.locked_until for row in rows if row.locked_until is not None and row.locked_until > now]
        if locks:
            seconds = _seconds_until(max(locks), now)
            raise TooManyAttempts(
                f"Too many failed attempts; try again in {seconds} s.", headers={"Retry-After": str(seconds)}
            )

    async def failed(self, *subjects: str) -> None:
        """Count a failure for each subject, lock those past their free attempts, and commit."""
        now = utcnow()
        for subject in subjects:
            failures, _ = await self._bump(
                subject, now=now, window=timedelta(seconds=WINDOW_SECONDS), sliding=True
            )
            if seconds := lock_seconds(failures):
                await self.uow.session.execute(
                    update(_table)
                    .where(_subject == subject)
                    .values(locked_until=now + timedelta(seconds=seconds))
                )
        await self.uow.commit()

    async def succeeded(self, *subjects: str) -> None:
        """Forget the failures of ``subjects`` (those check() found), and commit."""
        known = [subject for subject in subjects if subject in self._counted]
        if known:
            await self.uow.session.execute(delete(_table).where(_subject.in_(known)))
            await self.uow.commit()

    async def limit(self, subject: str, *, per_hour: int) -> None:
        """Count a request for ``subject``; past ``per_hour`` in the current hour, refuse (429)."""
        now = utcnow()
        count, window_ends_at = await self._bump(
            LIMIT_PREFIX + subject, now=now, window=timedelta(hours=1), sliding=False
        )
        if count > per_hour:
            await self.uow.commit()
            wait = _seconds_until(window_ends_at, now)
            raise TooManyAttempts(
                f"Too many requests; try again in {wait} s.", headers={"Retry-After": str(wait)}
            )
