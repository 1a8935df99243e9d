"""Sign-in and tokens: OAuth client credentials (rotation, revocation, scopes), agent
password sign-in (lockout, refresh rotation, logout), and tokens that must never pass."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from redis.asyncio import Redis

from shared import tokens
from shared.principal import PrincipalKind
from shared.tokens import REVOKED_JTI, InvalidToken, JwksSource, KeyStore, TokenIssuer, TokenVerifier
from tests import auth
from tests.ticket_api.conftest import Actors, new_ticket


async def new_client(api: Actors, **overrides: Any) -> dict[str, Any]:
    body = {"name": "Partner portal", "organization_ids": [api.org_a["id"]], **overrides}
    response = await api.client.post("/api/v1/clients", json=body, headers=api.admin)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def client_token(api: Actors, client_id: str, secret: str, **form: str) -> httpx.Response:
    return await api.client.post(
        "/api/v1/oauth/token", data={"grant_type": "client_credentials", **form}, auth=(client_id, secret)
    )


async def test_a_portal_gets_a_token_and_reaches_only_its_organizations(api: Actors) -> None:
    created = await new_client(api, scopes=["tickets:read", "tickets:write"])
    credentials = created["credentials"]
    assert credentials["client_secret"].startswith("hds_")
    listing = await api.client.get(f"/api/v1/clients/{created['client']['id']}", headers=api.admin)
    assert "secret" not in json.dumps(listing.json()).replace("secret_prefix", "")

    response = await client_token(api, credentials["client_id"], credentials["client_secret"])
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    token = response.json()
    assert token["token_type"] == "Bearer"
    assert token["scope"] == "tickets:read tickets:write"
    headers = {"Authorization": f"Bearer {token['access_token']}"}

    mine = await api.client.post("/api/v1/tickets", json=new_ticket(), headers=headers)
    assert mine.status_code == 201
    theirs = await api.client.post(
        "/api/v1/tickets", json=new_ticket(contact={"email": "bob@globex.test"}), headers=api.portal_b
    )
    assert (
        await api.client.get(f"/api/v1/tickets/{theirs.json()['id']}", headers=headers)
    ).status_code == 404

    # The same exchange with the credentials in the form body.
    form = await api.client.post(
        "/api/v1/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": credentials["client_id"],
            "client_secret": credentials["client_secret"],
        },
    )
    assert form.status_code == 200


async def test_wrong_credentials_and_unknown_grants_are_refused(api: Actors) -> None:
    credentials = (await new_client(api))["credentials"]
    wrong = await client_token(api, credentials["client_id"], "hds_wrong")
    assert wrong.status_code == 401
    assert wrong.headers["content-type"] == "application/problem+json"
    assert wrong.json()["error"] == "invalid_client"
    unknown = await client_token(api, "hdc_nobody", credentials["client_secret"])
    assert unknown.status_code == 401
    grant = await api.client.post("/api/v1/oauth/token", data={"grant_type": "password"})
    assert grant.status_code == 422
    assert grant.json()["error"] == "unsupported_grant_type"


async def test_a_token_carries_only_the_scopes_asked_for(api: Actors) -> None:
    credentials = (await new_client(api, scopes=["tickets:read", "tickets:write"]))["credentials"]
    read_only = await client_token(
        api, credentials["client_id"], credentials["client_secret"], scope="tickets:read"
    )
    headers = {"Authorization": f"Bearer {read_only.json()['access_token']}"}
    assert (await api.client.get("/api/v1/tickets", headers=headers)).status_code == 200
    refused = await api.client.post("/api/v1/tickets", json=new_ticket(), headers=headers)
    assert refused.status_code == 403
    assert refused.json()["scope"] == "tickets:write"
    beyond = await client_token(
        api, credentials["client_id"], credentials["client_secret"], scope="billing:read"
    )
    assert beyond.status_code == 400
    assert beyond.json()["error"] == "invalid_scope"


async def test_secret_rotation_overlaps_then_the_old_secret_stops(api: Actors) -> None:
    created = await new_client(api)
    client_id, old = created["credentials"]["client_id"], created["credentials"]["client_secret"]
    path = f"/api/v1/clients/{created['client']['id']}/secrets"

    rotated = await api.client.post(path, json={"overlap_hours": 24}, headers=api.admin)
    assert rotated.status_code == 201
    new = rotated.json()["client_secret"]
    assert (await client_token(api, client_id, old)).status_code == 200
    assert (await client_token(api, client_id, new)).status_code == 200

    again = await api.client.post(path, json={"overlap_hours": 0}, headers=api.admin)
    newest = again.json()["client_secret"]
    assert (await client_token(api, client_id, old)).status_code == 401
    assert (await client_token(api, client_id, new)).status_code == 401
    assert (await client_token(api, client_id, newest)).status_code == 200


async def test_revoking_a_client_stops_its_secrets_and_its_tokens_at_once(api: Actors) -> None:
    created = await new_client(api)
    credentials = created["credentials"]
    token = (await client_token(api, credentials["client_id"], credentials["client_secret"])).json()[
        "access_token"
    ]
    headers = {"Authorization": f"Bearer {token}"}
    assert (await api.client.get("/api/v1/tickets", headers=headers)).status_code == 200

    revoked = await api.client.delete(f"/api/v1/clients/{created['client']['id']}", headers=api.admin)
    assert revoked.status_code == 204
    assert (await api.client.get("/api/v1/tickets", headers=headers)).status_code == 401
    assert (
        await client_token(api, credentials["client_id"], credentials["client_secret"])
    ).status_code == 401


async def test_only_admins_manage_clients(api: Actors) -> None:
    body = {"name": "x", "organization_ids": [api.org_a["id"]]}
    assert (await api.client.post("/api/v1/clients", json=body, headers=api.agent)).status_code == 403
    assert (await api.client.post("/api/v1/clients", json=body, headers=api.portal_a)).status_code == 403
    assert (await api.client.get("/api/v1/clients", headers=api.portal_a)).status_code == 403
    bad_scope = await api.client.post(
        "/api/v1/clients", json={**body, "scopes": ["everything"]}, headers=api.admin
    )
    assert bad_scope.status_code == 422


async def sign_in(api: Actors, password: str, email: str = "alice@helpdesk.test") -> httpx.Response:
    return await api.client.post("/api/v1/auth/login", json={"email": email, "password": password})


async def test_agent_signs_in_refreshes_and_logs_out(api: Actors) -> None:
    password = "a long enough passphrase"
    set_password = await api.client.put(
        f"/api/v1/agents/{api.agent_id}/password", json={"password": password}, headers=api.admin
    )
    assert set_password.status_code == 204
    login = await sign_in(api, password)
    assert login.status_code == 200, login.text
    tokens = login.json()
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert (await api.client.get("/api/v1/agents", headers=headers)).status_code == 200
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert claims["kind"] == PrincipalKind.AGENT.value
    assert claims["agent_id"] == str(api.agent_id)

    refreshed = await api.client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200
    second = refreshed.json()
    # A used refresh token presented again means theft: the whole session is closed.
    replay = await api.client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert replay.status_code == 400
    after_theft = await api.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]}
    )
    assert after_theft.status_code == 400

    fresh = (await sign_in(api, password)).json()
    fresh_headers = {"Authorization": f"Bearer {fresh['access_token']}"}
    logout = await api.client.post(
        "/api/v1/auth/logout", json={"refresh_token": fresh["refresh_token"]}, headers=fresh_headers
    )
    assert logout.status_code == 204
    assert (await api.client.get("/api/v1/agents", headers=fresh_headers)).status_code == 401
    assert (
        await api.client.post("/api/v1/auth/refresh", json={"refresh_token": fresh["refresh_token"]})
    ).status_code == 400


async def test_repeated_wrong_passwords_lock_the_account_for_a_while(api: Actors) -> None:
    password = "a long enough passphrase"
    await api.client.put(
        f"/api/v1/agents/{api.agent_id}/password", json={"password": password}, headers=api.admin
    )
    for _ in range(5):
        wrong = await sign_in(api, "not it")
        assert wrong.status_code == 401
        assert wrong.json()["detail"] == "Wrong email or password."
    locked = await sign_in(api, password)
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) >= 1
    unknown = await sign_in(api, "whatever", email="nobody@helpdesk.test")
    assert unknown.status_code in (401, 429)
    # The address's failed sign-ins do not lock a portal out of its client-credentials grant there.
    client = await new_client(api)
    granted = await client_token(api, client["client"]["client_id"], client["credentials"]["client_secret"])
    assert granted.status_code == 200, granted.text


async def test_password_rules(api: Actors) -> None:
    short = await api.client.put(
        f"/api/v1/agents/{api.agent_id}/password", json={"password": "short"}, headers=api.admin
    )
    assert short.status_code == 422
    own_without_current = await api.client.put(
        f"/api/v1/agents/{api.agent_id}/password",
        json={"password": "another long passphrase"},
        headers=api.agent,
    )
    assert own_without_current.status_code == 204  # no password yet: nothing to confirm
    own_wrong_current = await api.client.put(
        f"/api/v1/agents/{api.agent_id}/password",
        json={"password": "a third long passphrase", "current_password": "nope"},
        headers=api.agent,
    )
    assert own_wrong_current.status_code == 422
    assert own_wrong_current.json()["errors"][0]["location"] == "body.current_password"
    other = await api.client.put(
        f"/api/v1/agents/{auth.agent().subject_id}/password", json={"password": "x" * 20}, headers=api.agent
    )
    assert other.status_code == 403


def _b64(data: dict[str, Any] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _hs256(claims: dict[str, Any], secret: bytes, kid: str) -> str:
    """The classic key-confusion forgery (PyJWT itself refuses to make one)."""
    signing_input = f"{_b64({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{_b64(claims)}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


async def test_tokens_that_must_never_pass(api: Actors, tmp_path: Any) -> None:
    good = auth.issue_token(auth.admin())
    header, payload, signature = good.split(".")
    claims = jwt.decode(good, options={"verify_signature": False})
    keys = KeyStore(tmp_path / "other-keys")
    keys.ensure_key()
    public_pem = (
        keys.private_key(keys.kids()[0])
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    kid = jwt.get_unverified_header(good)["kid"]
    forged = {
        "alg none": f"{_b64({'alg': 'none', 'kid': kid})}.{payload}.",
        "HS256 with a public key": _hs256(claims, public_pem, kid),
        "tampered payload": f"{header}.{_b64({**claims, 'kind': 'admin', 'orgs': []})}.{signature}",
        "another key, same kid": jwt.encode(
            claims, keys.private_key(keys.kids()[0]), algorithm="EdDSA", headers={"kid": kid}
        ),
        "unknown kid": jwt.encode(
            claims, keys.private_key(keys.kids()[0]), algorithm="EdDSA", headers={"kid": "nope"}
        ),
        "wrong audience": TokenIssuer(
            KeyStore(auth.issuer().keys.directory), issuer="helpdesk", audience="someone-else"
        )
        .issue(auth.admin(), ttl_seconds=60)
        .token,
        "wrong issuer": TokenIssuer(
            KeyStore(auth.issuer().keys.directory), issuer="evil", audience="helpdesk-api"
        )
        .issue(auth.admin(), ttl_seconds=60)
        .token,
        "expired": auth.issue_token(auth.admin(), ttl_seconds=60, now=time.time() - 3600),
        "garbage": "not.a.token",
    }
    for name, token in forged.items():
        response = await api.client.get("/api/v1/tickets", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, name
        assert response.headers["content-type"] == "application/problem+json", name
    assert (
        await api.client.get("/api/v1/tickets", headers={"Authorization": f"Bearer {good}"})
    ).status_code == 200


async def test_key_rotation_keeps_old_tokens_until_the_old_key_is_retired(
    redis_url: str, tmp_path: Any
) -> None:
    keys = KeyStore(tmp_path / "keys")
    first = keys.ensure_key()
    jwks_file = tmp_path / "jwks.json"
    keys.publish(jwks_file)
    issuer = TokenIssuer(keys, issuer="helpdesk", audience="helpdesk-api")
    old_token = issuer.issue(auth.admin(), ttl_seconds=600).token

    second = keys.rotate()
    keys.publish(jwks_file)
    new_token = issuer.issue(auth.admin(), ttl_seconds=600).token
    assert jwt.get_unverified_header(new_token)["kid"] == second != first

    verifier = TokenVerifier(
        JwksSource(file=jwks_file, max_age=0), issuer="helpdesk", audience="helpdesk-api", revocations=None
    )
    assert (await verifier.verify(old_token)).kind is PrincipalKind.ADMIN
    assert (await verifier.verify(new_token)).kind is PrincipalKind.ADMIN
    keys.retire(first)
    keys.publish(jwks_file)
    with pytest.raises(Exception, match="unknown key"):
        await verifier.verify(old_token)
    assert (await verifier.verify(new_token)).kind is PrincipalKind.ADMIN


async def test_a_remembered_token_is_still_refused_once_expired_revoked_or_its_key_retired(
    redis_url: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The verifier remembers tokens it checked (the signature is the costly part), but expiry,
    revocation and the signing key are checked on every use."""
    keys = KeyStore(tmp_path / "keys")
    kid = keys.ensure_key()
    jwks_file = tmp_path / "jwks.json"
    keys.publish(jwks_file)
    issuer = TokenIssuer(keys, issuer="helpdesk", audience="helpdesk-api")
    revocations = Redis.from_url(redis_url)
    verifier = TokenVerifier(
        JwksSource(file=jwks_file, max_age=0),
        issuer="helpdesk",
        audience="helpdesk-api",
        revocations=revocations,
    )
    try:
        expiring, revoked, retired = (issuer.issue(auth.admin(), ttl_seconds=600).token for _ in range(3))
        for token in (expiring, revoked, retired):
            assert (await verifier.verify(token)).kind is PrincipalKind.ADMIN
            assert token in verifier._verified, "remembered"

        principal = await verifier.verify(revoked)
        await revocations.set(f"{REVOKED_JTI}{principal.token_id}", "1", ex=60)
        with pytest.raises(InvalidToken, match="revoked"):
            await verifier.verify(revoked)

        later = time.time() + 3600
        monkeypatch.setattr(tokens.time, "time", lambda: later)
        with pytest.raises(InvalidToken, match="expired"):
            await verifier.verify(expiring)
        monkeypatch.undo()

        keys.retire(kid)
        keys.publish(jwks_file)
        with pytest.raises(InvalidToken, match="unknown key"):
            await verifier.verify(retired)
    finally:
        await revocations.aclose()


async def test_jwks_is_public_and_has_no_private_parts(api: Actors) -> None:
    for path in ("/.well-known/jwks.json", "/api/v1/.well-known/jwks.json"):
        document = (await api.client.get(path)).json()
        assert document["keys"]
        for key in document["keys"]:
            assert key["alg"] == "EdDSA" and key["kty"] == "OKP"
            assert "d" not in key, "private key material must never be published"


async def test_deactivating_an_agent_ends_their_sessions(api: Actors) -> None:
    password = "a long enough passphrase"
    await api.client.put(
        f"/api/v1/agents/{api.agent_id}/password", json={"password": password}, headers=api.admin
    )
    tokens = (await sign_in(api, password)).json()
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert (await api.client.get("/api/v1/agents", headers=headers)).status_code == 200
    await api.client.patch(f"/api/v1/agents/{api.agent_id}", json={"active": False}, headers=api.admin)
    assert (await api.client.get("/api/v1/agents", headers=headers)).status_code == 401
    assert (
        await api.client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    ).status_code == 400
    assert (await sign_in(api, password)).status_code == 401
