"""Delivering what handlers recorded: mail through the SMTP relay (:mod:`.email`) and signed
webhooks (:mod:`.webhooks`), each attempt claimed with a lease and retried on its schedule; and
the sweeper, which enqueues again every row whose job was lost."""

from __future__ import annotations

from datetime import timedelta

from services.notifier import repository as repo
from services.notifier.context import Notifier
from services.notifier.dispatch import DELIVER_WEBHOOK, SEND_EMAIL, Job


async def sweep(notifier: Notifier, *, grace: timedelta, limit: int = 500) -> int:
    """Enqueue again every row whose job should have run (lost jobs, a flushed Redis)."""
    now = notifier.clock()
    async with notifier.sessions() as session:
        mails = await repo.due_notifications(session, now=now, grace=grace, limit=limit)
        hooks = await repo.due_deliveries(session, now=now, grace=grace, limit=limit)
    jobs = [Job(SEND_EMAIL, str(i), attempts) for i, attempts in mails]
    jobs += [Job(DELIVER_WEBHOOK, str(i), attempts) for i, attempts in hooks]
    return await notifier.dispatcher.enqueue(jobs) if jobs else 0
