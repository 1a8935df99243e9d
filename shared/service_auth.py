"""Service-to-service credentials: a service calls another with an access token it got for
itself from ticket_api by OAuth 2.0 client credentials (kind ``service``), renewed before it
expires and once more if a call is refused with 401 (a rotated key, a revoked token)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator

import httpx

RENEW_BEFORE_SECONDS = 60


class ClientCredentialsAuth(httpx.Auth):
    """An ``httpx`` auth flow: ``http_client(..., auth=ClientCredentialsAuth(...))``."""

    requires_response_body = False

    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        client_secret: str,
        scope: str | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        """``http`` fetches tokens (default: a short-lived client per fetch)."""
        self.token_url = token_url
        self.client_id = client_id
        self.client_secret = client_secret
        self.scope = scope
        self.http = http
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    async def _fetch(self) -> str:
        data = {"grant_type": "client_credentials"} | ({"scope": self.scope} if self.scope else {})
        if self.http is not None:
            response = await self.http.post(
                self.token_url, data=data, auth=(self.client_id, self.client_secret)
            )
        else:
            async with httpx.AsyncClient(timeout=5) as client:
                response = await client.post(
                    self.token_url, data=data, auth=(self.client_id, self.client_secret)
                )
        response.raise_for_status()
        body = response.json()
        self._token = str(body["access_token"])
        self._expires_at = time.monotonic() + int(body.get("expires_in", 300))
        return self._token

    async def token(self, *, renew: bool = False) -> str:
        async with self._lock:
            if renew or self._token is None or time.monotonic() > self._expires_at - RENEW_BEFORE_SECONDS:
                return await self._fetch()
            return self._token

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        request.headers["Authorization"] = f"Bearer {await self.token()}"
        response = yield request
        if response.status_code == 401:
            request.headers["Authorization"] = f"Bearer {await self.token(renew=True)}"
            yield request
