"""Jobs that must start only once the rows they act on are committed.

A handler or route writes a notification or webhook delivery, then calls :meth:`Dispatcher.after_commit`;
the job is enqueued on notifier's own queue when the session commits (dropped on rollback).
Job ids are ``<kind>:<row id>:<attempt>``, so a second enqueue of the same attempt (the
sweeper re-finding a row whose job is still queued) is refused by the queue, and each retry
is a job of its own. The database row stays the source of truth: the sweeper
(:mod:`services.notifier.tasks`) enqueues again whatever a lost job left behind.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from arq.connections import ArqRedis
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from shared.clock import utcnow
from shared.events import Service
from shared.queue import queue_name

log = logging.getLogger(__name__)

SEND_EMAIL = "send_notification"
DELIVER_WEBHOOK = "deliver_webhook"
_PENDING = "notifier.pending_jobs"
_HOOKED = "notifier.after_commit_hooked"


@dataclass(frozen=True)
class Job:
    function: str
    row_id: str
    attempt: int
    defer_until: datetime | None = None
    # A second job for the same attempt, e.g. "now" for a deferred row made due early: the
    # queue refuses a job id it still holds (the deferred job), whichever runs first claims
    # the row and the other finds nothing to do.
    variant: str = ""

    @property
    def job_id(self) -> str:
        base = f"{self.function}:{self.row_id}:{self.attempt}"
        return f"{base}:{self.variant}" if self.variant else base


class Dispatcher:
    def __init__(self, redis: ArqRedis) -> None:
        self.redis = redis
        self.queue = queue_name(Service.NOTIFIER)
        self._in_flight: set[asyncio.Task[int]] = set()

    def after_commit(self, session: AsyncSession, job: Job) -> None:
        """Enqueue ``job`` once ``session`` commits."""
        sync_session = session.sync_session
        sync_session.info.setdefault(_PENDING, []).append(job)
        if not sync_session.info.get(_HOOKED):
            sync_session.info[_HOOKED] = True
            event.listen(sync_session, "after_commit", self._on_commit)
            event.listen(sync_session, "after_rollback", self._on_rollback)

    def _on_commit(self, sync_session: Session) -> None:
        jobs: list[Job] = sync_session.info.pop(_PENDING, [])
        if jobs:
            task = asyncio.get_running_loop().create_task(self.enqueue(jobs))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

    def _on_rollback(self, sync_session: Session) -> None:
        sync_session.info.pop(_PENDING, None)

    async def enqueue(self, jobs: list[Job]) -> int:
        """Enqueue now; a failure is only logged (the sweeper finds the rows). Returns new jobs."""
        created = 0
        for job in jobs:
            try:
                options: dict[str, Any] = {"_job_id": job.job_id, "_queue_name": self.queue}
                if job.defer_until is not None:
                    # The queue waits in real time, our clock may be shifted (shared.clock):
                    # defer by the time left, not until an instant the queue would misread.
                    options["_defer_by"] = max(job.defer_until - utcnow(), timedelta(0))
                created += (
                    await self.redis.enqueue_job(job.function, job.row_id, job.attempt, **options) is not None
                )
            except Exception:
                log.warning("could not enqueue %s; the sweeper will", job.job_id, exc_info=True)
        return created

    async def drain(self) -> None:
        while self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
