"""Access tokens: JWTs signed by ticket_api with Ed25519 keys, verified locally everywhere.

* :class:`KeyStore` — the signing keys (one PEM file per key id in a directory), the newest
  signs, every non-retired key stays in the published JWKS so tokens survive a rotation.
* :class:`TokenIssuer` — turns a :class:`~shared.principal.Principal` into a signed token.
* :class:`TokenVerifier` — checks signature (algorithm pinned, key by ``kid`` from the JWKS),
  issuer, audience, expiry and revocation, and gives back the Principal.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm
from redis.asyncio import Redis

from shared.principal import Principal, PrincipalKind
from shared.transient import TransientError

ALGORITHM = "EdDSA"  # pinned: never taken from a token's header
LEEWAY_SECONDS = 30
JWKS_REFRESH_SECONDS = 10.0  # at most this often when an unknown kid shows up
JWKS_MAX_AGE_SECONDS = 300.0  # and at least this often, so a retired key stops verifying
# Revocations as every service reads them in Redis: a cache of ticket_api's ``revocation`` table,
# which ticket_api reloads whenever the REVOCATIONS_LOADED marker is missing (a Redis restart or
# flush lost them). Without the marker the cache is not trusted: requests answer 503, never pass.
REVOKED_PREFIX = "helpdesk:revoked:"
REVOKED_JTI = f"{REVOKED_PREFIX}jti:"
REVOKED_SUBJECT = f"{REVOKED_PREFIX}sub:"
REVOKED_SESSION = f"{REVOKED_PREFIX}sid:"
REVOCATIONS_LOADED = f"{REVOKED_PREFIX}loaded"


class InvalidToken(Exception):
    """The token is malformed, forged, expired, for someone else, or revoked."""


class RevocationsUnavailable(TransientError):
    """Redis lost the revocations (restarted, flushed) and ticket_api has not reloaded them yet."""


# --- keys --------------------------------------------------------------------------------


def _new_kid() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{secrets.token_hex(3)}"


class KeyStore:
    """Signing keys in a directory: ``<kid>.pem`` (private, mode 0600); ``<kid>.retired`` marks
    a key no longer published. Kids sort by creation time; the newest active key signs."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def kids(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        retired = {p.stem for p in self.directory.glob("*.retired")}
        return sorted(p.stem for p in self.directory.glob("*.pem") if p.stem not in retired)

    def private_key(self, kid: str) -> Ed25519PrivateKey:
        key = serialization.load_pem_private_key((self.directory / f"{kid}.pem").read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{kid}.pem is not an Ed25519 key")
        return key

    def current(self) -> tuple[str, Ed25519PrivateKey]:
        kids = self.kids()
        if not kids:
            raise LookupError(
                f"no signing key in {self.directory}; "
                "run `python -m services.ticket_api.identity.keys rotate`"
            )
        return kids[-1], self.private_key(kids[-1])

    def rotate(self) -> str:
        """Create a new signing key (it signs from now on; older keys still verify)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        kid = _new_kid()
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        # O_EXCL: two processes rotating at once never overwrite each other's key.
        fd = os.open(self.directory / f"{kid}.pem", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(pem)
        return kid

    def ensure_key(self) -> str:
        kids = self.kids()
        return kids[-1] if kids else self.rotate()

    def retire(self, kid: str) -> None:
        """Stop publishing ``kid``: tokens it signed stop verifying once verifiers refresh."""
        (self.directory / f"{kid}.retired").touch()

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid in self.kids():
            public = OKPAlgorithm.to_jwk(self.private_key(kid).public_key(), as_dict=True)
            keys.append({**public, "kid": kid, "alg": ALGORITHM, "use": "sig"})
        return {"keys": keys}

    def publish(self, jwks_file: Path) -> None:
        """Write the public JWKS for verifiers that read a file (the local run and tests)."""
        jwks_file.parent.mkdir(parents=True, exist_ok=True)
        temporary = jwks_file.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(self.jwks()))
        temporary.replace(jwks_file)


# --- issuing -----------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedToken:
    token: str
    jti: str
    expires_at: datetime


class TokenIssuer:
    def __init__(self, keys: KeyStore, *, issuer: str, audience: str) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience

    def issue(self, principal: Principal, *, ttl_seconds: int, now: float | None = None) -> IssuedToken:
        kid, key = self.keys.current()
        issued_at = int(now if now is not None else time.time())
        jti = secrets.token_urlsafe(16)
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": str(principal.subject_id),
            "iat": issued_at,
            "nbf": issued_at,
            "exp": issued_at + ttl_seconds,
            "jti": jti,
            "kind": principal.kind.value,
            "name": principal.name,
            "orgs": sorted(str(org) for org in principal.organization_ids),
            "scope": " ".join(sorted(principal.scopes)),
        }
        if principal.agent_id:
            claims["agent_id"] = str(principal.agent_id)
        if principal.contact_id:
            claims["contact_id"] = str(principal.contact_id)
        if principal.session_id:
            claims["sid"] = str(principal.session_id)
        token = jwt.encode(claims, key, algorithm=ALGORITHM, headers={"kid": kid})
        return IssuedToken(token, jti, datetime.fromtimestamp(issued_at + ttl_seconds, UTC))


# --- verifying ---------------------------------------------------------------------------


class JwksSource:
    """Public keys by kid, from ticket_api's JWKS URL (production) or a file (local run, tests).
    Refreshed when an unknown kid shows up, at most every few seconds."""

    def __init__(
        self, *, url: str = "", file: Path | None = None, max_age: float = JWKS_MAX_AGE_SECONDS
    ) -> None:
        if not url and file is None:
            raise ValueError("a JWKS URL or file is needed to verify tokens")
        self.url = url
        self.file = file
        self.max_age = max_age
        self._keys: dict[str, jwt.PyJWK] = {}
        self._loaded_at = float("-inf")

    async def key(self, kid: str) -> jwt.PyJWK:
        age = time.monotonic() - self._loaded_at
        if age > self.max_age or (kid not in self._keys and age > JWKS_REFRESH_SECONDS):
            await self._load()
        try:
            return self._keys[kid]
        except KeyError:
            raise InvalidToken("token signed with an unknown key") from None

    async def _load(self) -> None:
        self._loaded_at = time.monotonic()
        try:
            if self.url:
                async with httpx.AsyncClient(timeout=5) as client:
                    response = await client.get(self.url)
                    response.raise_for_status()
                    document = response.json()
            else:
                assert self.file is not None
                document = json.loads(self.file.read_text())
        except (OSError, ValueError, httpx.HTTPError):
            return  # keep the keys we have; an unknown kid stays unknown
        self._keys = {
            entry["kid"]: jwt.PyJWK(entry)
            for entry in document.get("keys", [])
            if entry.get("alg") == ALGORITHM
        }


# Tokens whose signature and claims were checked lately, by their text: a client sends the same
# token with every request, and the signature check is the costly part (~200 µs). Expiry, the
# signing key still being published, and revocation are checked on every use all the same.
VERIFIED_CACHE_SIZE = 4096
VERIFIED_CACHE_SECONDS = 60.0


class TokenVerifier:
    def __init__(self, keys: JwksSource, *, issuer: str, audience: str, revocations: Redis | None) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.revocations = revocations
        self._verified: OrderedDict[str, tuple[float, str, dict[str, Any]]] = OrderedDict()

    async def verify(self, token: str) -> Principal:
        claims = await self._remembered(token)
        if claims is None:
            claims = await self._checked(token)
        await self._check_revocation(claims)
        return principal_from_claims(claims)

    async def _remembered(self, token: str) -> dict[str, Any] | None:
        entry = self._verified.get(token)
        if entry is None:
            return None
        checked_at, kid, claims = entry
        if time.monotonic() - checked_at > VERIFIED_CACHE_SECONDS:
            del self._verified[token]
            return None
        if time.time() > int(claims["exp"]) + LEEWAY_SECONDS:
            del self._verified[token]
            raise InvalidToken("the token has expired; get a new one")
        await self.keys.key(kid)  # a retired key's tokens stop working at once
        return claims

    async def _checked(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("not a JWT") from None
        if header.get("alg") != ALGORITHM or not isinstance(header.get("kid"), str):
            raise InvalidToken(f"tokens are signed with {ALGORITHM} and name their key")
        key = await self.keys.key(header["kid"])
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "sub", "jti", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("the token has expired; get a new one") from None
        except jwt.PyJWTError as error:
            raise InvalidToken(f"the token is not valid here ({type(error).__name__})") from None
        self._verified[token] = (time.monotonic(), header["kid"], claims)
        if len(self._verified) > VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)
        return claims

    async def _check_revocation(self, claims: dict[str, Any]) -> None:
        if self.revocations is None:
            return
        keys = [REVOCATIONS_LOADED, f"{REVOKED_JTI}{claims['jti']}", f"{REVOKED_SUBJECT}{claims['sub']}"]
        if claims.get("sid"):
            keys.append(f"{REVOKED_SESSION}{claims['sid']}")
        loaded, jti_revoked, subject_revoked_at, *session_revoked = await self.revocations.mget(keys)
        if loaded is None:
            raise RevocationsUnavailable("revocations are being reloaded into Redis")
        if jti_revoked is not None:
            raise InvalidToken("the token was revoked")
        if subject_revoked_at is not None and int(claims["iat"]) <= int(subject_revoked_at):
            raise InvalidToken("the credential behind this token was revoked")
        if session_revoked and session_revoked[0] is not None:
            raise InvalidToken("the session of this token was closed")


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    try:
        return Principal(
            kind=PrincipalKind(claims["kind"]),
            subject_id=UUID(claims["sub"]),
            name=str(claims.get("name", "")),
            organization_ids=frozenset(UUID(org) for org in claims.get("orgs", [])),
            agent_id=UUID(claims["agent_id"]) if claims.get("agent_id") else None,
            contact_id=UUID(claims["contact_id"]) if claims.get("contact_id") else None,
            scopes=frozenset(str(claims.get("scope", "")).split()),
            token_id=str(claims["jti"]),
            token_expires_at=int(claims["exp"]),
            session_id=UUID(claims["sid"]) if claims.get("sid") else None,
        )
    except (KeyError, ValueError) as error:
        raise InvalidToken(f"the token's claims are incomplete ({error})") from None
