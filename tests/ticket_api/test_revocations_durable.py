"""Revocations, single-use sign-in links and lockout counts are kept in the database: Redis losing
everything (a restart without its file, a flush) revives none of them. Meanwhile verifiers answer
503 rather than let a revoked token pass, until ticket_api has reloaded Redis (within a second)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from uuid import UUID

import httpx
from redis.asyncio import Redis

from shared import sign_in_links
from shared.tokens import REVOCATIONS_LOADED
from tests.ticket_api.conftest import Actors, new_ticket
from tests.ticket_api.test_auth import client_token, new_client, sign_in
from tests.ticket_api.test_customer_access import secret, sign_in_requests

PASSWORD = "a long enough passphrase"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def settled(api: Actors, headers: dict[str, str]) -> httpx.Response:
    """GET /agents with ``headers`` once the revocations are back in Redis (503 until then)."""
    for _ in range(100):
        response = await api.client.get("/api/v1/agents", headers=headers)
        if response.status_code != 503:
            return response
        assert response.headers["retry-after"]
        await asyncio.sleep(0.05)
    raise AssertionError("the revocations were not reloaded")


async def test_revocations_single_use_and_lockout_survive_redis_losing_everything(
    api: Actors, redis: Redis
) -> None:
    # A revoked portal client, a logged-out agent, a used sign-in link, a locked account.
    created = await new_client(api, scopes=["tickets:read"])
    credentials = created["credentials"]
    portal = bearer(
        (await client_token(api, credentials["client_id"], credentials["client_secret"])).json()[
            "access_token"
        ]
    )
    assert (
        await api.client.delete(f"/api/v1/clients/{created['client']['id']}", headers=api.admin)
    ).status_code == 204

    await api.client.put(
        f"/api/v1/agents/{api.agent_id}/password", json={"password": PASSWORD}, headers=api.admin
    )
    agent = bearer((await sign_in(api, PASSWORD)).json()["access_token"])
    assert (await api.client.post("/api/v1/auth/logout", json={}, headers=agent)).status_code == 204

    await api.client.post("/api/v1/tickets", json=new_ticket(), headers=api.portal_a)
    await api.client.post("/api/v1/auth/magic-link", json={"email": "jane@acme.test"})
    request = (await sign_in_requests(api))[-1]
    link = sign_in_links.make_token(
        UUID(request["contact_id"]),
        request["nonce"],
        datetime.fromisoformat(request["expires_at"]),
        secret=secret(api),
    )
    assert (await api.client.post("/api/v1/auth/magic-link/redeem", json={"token": link})).status_code == 200

    for _ in range(5):
        assert (await sign_in(api, "not it")).status_code == 401
    assert (await sign_in(api, PASSWORD)).status_code == 429

    await redis.flushdb()  # what a Redis restart without its append-only file does
    assert not await redis.exists(REVOCATIONS_LOADED)
    unsure = await api.client.get("/api/v1/agents", headers=api.admin)
    assert unsure.status_code in (200, 503), "never a revoked token let through, at worst a 503"

    assert (await settled(api, portal)).status_code == 401
    assert (await settled(api, agent)).status_code == 401
    assert (await settled(api, api.admin)).status_code == 200
    again = await api.client.post("/api/v1/auth/magic-link/redeem", json={"token": link})
    assert again.status_code == 400 and "already used" in again.json()["detail"]
    # The count goes on where it was: once the short first lock is over, a sixth failure locks again.
    for _ in range(50):
        wrong = await sign_in(api, "not it")
        if wrong.status_code != 429:
            break
        await asyncio.sleep(0.2)
    assert wrong.status_code == 401
    assert (await sign_in(api, PASSWORD)).status_code == 429


async def test_a_reused_refresh_token_revokes_the_access_tokens_of_its_session_at_once(api: Actors) -> None:
    await api.client.put(
        f"/api/v1/agents/{api.agent_id}/password", json={"password": PASSWORD}, headers=api.admin
    )
    first = (await sign_in(api, PASSWORD)).json()
    other_session = (await sign_in(api, PASSWORD)).json()
    second = (
        await api.client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    ).json()
    for tokens in (first, second):
        assert (
            await api.client.get("/api/v1/agents", headers=bearer(tokens["access_token"]))
        ).status_code == 200

    stolen = await api.client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert stolen.status_code == 400

    for tokens in (first, second):
        refused = await api.client.get("/api/v1/agents", headers=bearer(tokens["access_token"]))
        assert refused.status_code == 401
        assert "session" in refused.json()["detail"]
    still = await api.client.get("/api/v1/agents", headers=bearer(other_session["access_token"]))
    assert still.status_code == 200, "another session of the same agent is not touched"
