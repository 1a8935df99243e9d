"""Standard Webhooks signatures (https://www.standardwebhooks.com): what a receiver verifies.

Headers: ``webhook-id`` (stable across retries of one message), ``webhook-timestamp`` (unix
seconds of this attempt), ``webhook-signature`` (``v1,<base64 HMAC-SHA256>`` of
``"{id}.{timestamp}.{body}"``; several space-separated while a secret is being rotated).
Secrets are ``whsec_`` + base64 of 32 random bytes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signed_headers(secrets_: list[str], message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three headers for ``body``, signed with every given secret (newest first)."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(s, message_id, timestamp, body) for s in secrets_),
    }
