"""The notifier's working context: what handlers, jobs and routes need (settings, the database,
the queue, HTTP clients, the SMTP relay, a clock), built by :mod:`services.notifier.runtime`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

import httpx

from services.notifier.dispatch import Dispatcher
from services.notifier.settings import Settings
from services.notifier.smtp import Relay
from shared.clock import utcnow
from shared.db import SessionMaker
from shared.outbox import Outbox


@dataclass
class Notifier:
    """What handlers and jobs need: settings, the database, the queue, HTTP clients, a clock."""

    settings: Settings
    sessions: SessionMaker
    single_statements: SessionMaker  # one-statement writes, no BEGIN/COMMIT (shared.db)
    outbox: Outbox
    dispatcher: Dispatcher
    webhook_client: httpx.AsyncClient
    billing_client: httpx.AsyncClient
    relay: Relay
    clock: Callable[[], datetime] = field(default=utcnow)
    # Mail the relay accepted whose "sent" could not be written yet (the database down): by id,
    # when. Until it is written, an attempt that finds the row again records it, never resends.
    sent_unrecorded: dict[UUID, datetime] = field(default_factory=dict)
    _recording: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def secret(self) -> str:
        return self.settings.secret_key.get_secret_value()

    async def close(self) -> None:
        for task in self._recording:
            task.cancel()
        await asyncio.gather(*self._recording, return_exceptions=True)
        await self.dispatcher.drain()
        await self.webhook_client.aclose()
        await self.billing_client.aclose()
        await self.relay.aclose()
