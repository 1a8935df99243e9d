"""Building a :class:`~services.notifier.context.Notifier` from a service runtime (API or worker)."""

from __future__ import annotations

import functools
import logging

import httpx

from services.notifier.context import Notifier
from services.notifier.dispatch import Dispatcher
from services.notifier.settings import Settings
from services.notifier.smtp import Relay
from services.notifier.tasks import run_here
from shared.db import single_statement_maker
from shared.http import http_client
from shared.runtime import Runtime

log = logging.getLogger(__name__)


def billing_client(
    settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """billing's API, called with this service's own token (OAuth client credentials against
    ticket_api: fetched on first use, renewed before it expires and once on a 401).
    ``transport``: an in-process billing in tests."""
    client = http_client(base_url=settings.billing_base_url, transport=transport)
    auth = settings.service_auth()
    if auth is None:
        if settings.env != "test":
            log.warning("NOTIFIER_CLIENT_ID is not set: invoice PDFs cannot be fetched from billing")
    else:
        client.auth = auth
    return client


def open_notifier(settings: Settings, runtime: Runtime, *, worker: bool) -> Notifier:
    """The notifier of an API process or (``worker``) of a worker, which also sends the mail that
    is due at once itself rather than through the queue (:mod:`services.notifier.dispatch`)."""
    notifier = Notifier(
        settings=settings,
        sessions=runtime.sessions,
        single_statements=single_statement_maker(runtime.engine),
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
        billing_client=billing_client(settings),
        relay=Relay(settings),
    )
    if worker:
        notifier.dispatcher.run_here = functools.partial(run_here, notifier)
    return notifier
