from __future__ import annotations

import httpx

from shared.http import http_client
from shared.logging import bind_request_id


async def test_outgoing_calls_carry_the_current_request_id() -> None:
    seen: list[str | None] = []

    async def peer(scope: dict, receive: object, send: object) -> None:  # a real ASGI peer
        headers = dict(scope["headers"])
        seen.append(headers.get(b"x-request-id", b"").decode() or None)
        await send({"type": "http.response.start", "status": 204, "headers": []})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b""})  # type: ignore[operator]

    client = http_client(base_url="http://peer.test", transport=httpx.ASGITransport(app=peer))
    async with client:
        with bind_request_id("req-7"):
            await client.get("/x")
        await client.get("/y")
    assert seen == ["req-7", None]
    assert client.timeout.connect == 2.0
