"""Jobs that must start only once the rows they act on are committed.

A handler or route writes a notification or webhook delivery, then calls :meth:`Dispatcher.after_commit`;
the job is enqueued on notifier's own queue (through :mod:`shared.queue`, the one door to the
queue) when the session commits (dropped on rollback).
Job ids are ``<kind>:<row id>:<attempt>``, so a second enqueue of the same attempt (the
sweeper re-finding a row whose job is still queued) is refused by the queue, and each retry
is a job of its own. The database row stays the source of truth: the sweeper
(:mod:`services.notifier.tasks`) enqueues again whatever a lost job left behind.

In the worker, a mail that is due at once is sent right here after the commit instead of going
through the queue (``run_here``): the mail leaves a few milliseconds sooner and the queue's
round trips (enqueue, poll, start, finish: about ten to Redis) are saved. What it does is the
job's own function, so a crash in between leaves the same pending row for the sweeper, and
retries are still deferred jobs. A mail the worker records due at once is even claimed by the
transaction that records it (:func:`services.notifier.recording.queue_email`): its job only sends.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from services.notifier.models import Notification
from shared import queue
from shared.clock import utcnow
from shared.events import Service

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
    # The id of a waiting (deferred) job this one makes unnecessary: taken off the queue once
    # this one is on its way, so it does not run only to find nothing to do.
    withdraws: str | None = None
    # The row itself, when the transaction that wrote it also claimed it for this attempt: the
    # job only sends (run here, never queued).
    claimed: Notification | None = field(default=None, compare=False)

    @property
    def job_id(self) -> str:
        base = f"{self.function}:{self.row_id}:{self.attempt}"
        return f"{base}:{self.variant}" if self.variant else base


# Jobs running here at once at most (the rest wait their turn, as in arq's max_jobs).
MAX_RUNNING_HERE = 32

JobRunner = Callable[["Job"], Awaitable[object]]


class Dispatcher:
    def __init__(self, redis: queue.Queue, *, run_here: JobRunner | None = None) -> None:
        self.redis = redis
        self.run_here = run_here
        self._slots = asyncio.Semaphore(MAX_RUNNING_HERE)
        self._in_flight: set[asyncio.Task[Any]] = set()

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
        if not jobs:
            return
        here = [job for job in jobs if self._runs_here(job)]
        queued = [job for job in jobs if job not in here]
        if queued:
            self._spawn(self.enqueue(queued))
        for job in here:
            self._spawn(self._run(job))
        withdrawn = [job.withdraws for job in jobs if job.withdraws]
        if withdrawn:
            self._spawn(self.withdraw(withdrawn))

    async def withdraw(self, job_ids: list[str]) -> None:
        """Take waiting jobs off the queue (one that has started already just runs: a job finds
        its row claimed or done and does nothing)."""
        try:
            await queue.withdraw(self.redis, Service.NOTIFIER, job_ids)
        except Exception:
            log.warning("could not withdraw %s; they will run and find nothing to do", job_ids, exc_info=True)

    def _runs_here(self, job: Job) -> bool:
        """Mail due now runs here. Webhook deliveries stay jobs: a slow endpoint holds a job
        slot for its timeout, never the slots this process's mail goes out through."""
        return self.run_here is not None and job.function == SEND_EMAIL and job.defer_until is None

    def _spawn(self, work: Awaitable[Any]) -> None:
        task = asyncio.get_running_loop().create_task(work)  # type: ignore[arg-type]
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _run(self, job: Job) -> None:
        assert self.run_here is not None
        async with self._slots:
            try:
                await self.run_here(job)
            except Exception:
                log.exception("job %s failed here; the sweeper will enqueue it again", job.job_id)

    def _on_rollback(self, sync_session: Session) -> None:
        sync_session.info.pop(_PENDING, None)

    async def enqueue(self, jobs: list[Job]) -> int:
        """Enqueue now; a failure is only logged (the sweeper finds the rows). Returns new jobs."""
        created = 0
        for job in jobs:
            # The queue waits in real time, our clock may be shifted (shared.clock): defer by
            # the time left, not until an instant the queue would misread.
            defer_by = max(job.defer_until - utcnow(), timedelta(0)) if job.defer_until is not None else None
            try:
                created += await queue.enqueue(
                    self.redis,
                    Service.NOTIFIER,
                    job.function,
                    job.row_id,
                    job.attempt,
                    job_id=job.job_id,
                    defer_by=defer_by,
                )
            except Exception:
                log.warning("could not enqueue %s; the sweeper will", job.job_id, exc_info=True)
        return created

    async def drain(self) -> None:
        while self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
