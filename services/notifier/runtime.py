"""Building a :class:`~services.notifier.service.Notifier` from a service runtime (API or worker)."""

from __future__ import annotations

import httpx

from services.notifier.dispatch import Dispatcher
from services.notifier.service import Notifier
from services.notifier.settings import Settings
from shared.http import http_client
from shared.runtime import Runtime


def open_notifier(settings: Settings, runtime: Runtime) -> Notifier:
    token = settings.service_token.get_secret_value()
    return Notifier(
        settings=settings,
        sessions=runtime.sessions,
        outbox=runtime.outbox,
        dispatcher=Dispatcher(runtime.redis),
        # Webhooks: no redirects (a redirect could point inside), no connection retries of its
        # own (the delivery schedule retries), one pool shared by every delivery job.
        webhook_client=httpx.AsyncClient(
            follow_redirects=False,
            timeout=httpx.Timeout(settings.webhook_timeout_seconds, connect=5.0),
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
            trust_env=False,
        ),
        billing_client=http_client(
            base_url=settings.billing_base_url,
            headers={"Authorization": f"Bearer {token}"} if token else None,
        ),
    )
