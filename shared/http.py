"""The one way services call each other over HTTP: timeouts, retries, request-id propagation."""

from __future__ import annotations

import httpx

from shared.logging import request_id_var

DEFAULT_TIMEOUT = httpx.Timeout(5.0, connect=2.0)


async def _propagate_request_id(request: httpx.Request) -> None:
    request_id = request_id_var.get()
    if request_id and "X-Request-ID" not in request.headers:
        request.headers["X-Request-ID"] = request_id


def http_client(
    *,
    base_url: str = "",
    timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    retries: int = 3,
    headers: dict[str, str] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` for one peer. Connection failures are retried by the transport;
    callers decide whether a 5xx is worth retrying (a job raises ``TransientError``).
    ``transport`` replaces the network one (an in-process ASGI peer in tests)."""
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=timeout,
        headers=headers,
        transport=transport or httpx.AsyncHTTPTransport(retries=retries),
        event_hooks={"request": [_propagate_request_id]},
    )
