"""Signed, expiring, purpose-bound tokens for links in mail (feedback, unsubscribe, …).

A token is ``<base64url(JSON payload)>.<base64url(HMAC-SHA256)>``. The MAC covers the purpose
and the payload, so a token made for one purpose is refused for another; the payload carries
``exp`` (unix seconds) and is readable by anyone holding the link, so put no secrets in it.
Verification compares in constant time and checks expiry only after the MAC.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from shared.clock import utcnow

MAX_TOKEN_LENGTH = 4096

# The purposes notifier signs links for and ticket_api opens them with.
FEEDBACK = "feedback"
TICKET_STATUS = "ticket-status"
_KEY_LABEL = b"helpdesk/signed-link/v1"


class InvalidLink(ValueError):
    """The token is malformed, forged, altered or made for another purpose."""


class ExpiredLink(InvalidLink):
    """The token was genuine but its time is up."""


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _b64decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise InvalidLink("not base64url") from None


def _secret_bytes(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def _mac(secret: str | bytes, purpose: str, body: str) -> bytes:
    # A key per use: the raw secret also signs other things (Message-IDs, reply tokens).
    key = hmac.new(_secret_bytes(secret), _KEY_LABEL, hashlib.sha256).digest()
    return hmac.new(key, purpose.encode() + b"\x00" + body.encode("ascii"), hashlib.sha256).digest()


def sign(payload: Mapping[str, Any], *, purpose: str, secret: str | bytes, expires_at: datetime) -> str:
    """A token carrying ``payload`` (JSON-serialisable, without an ``exp`` key) until ``expires_at``."""
    if "exp" in payload:
        raise ValueError("'exp' is set from expires_at")
    if expires_at.tzinfo is None:
        raise ValueError("expires_at must be timezone-aware")
    document = {**payload, "exp": int(expires_at.timestamp())}
    body = _b64encode(json.dumps(document, separators=(",", ":"), sort_keys=True).encode())
    return f"{body}.{_b64encode(_mac(secret, purpose, body))}"


def verify(token: str, *, purpose: str, secret: str | bytes, now: datetime | None = None) -> dict[str, Any]:
    """The payload of a genuine, unexpired token made for ``purpose`` (``exp`` included).

    Raises :class:`ExpiredLink` for an expired one and :class:`InvalidLink` for anything else."""
    if not token or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 1:
        raise InvalidLink("malformed token")
    body, signature = token.split(".")
    try:
        body.encode("ascii")
    except UnicodeEncodeError:
        raise InvalidLink("malformed token") from None
    if not hmac.compare_digest(_b64decode(signature), _mac(secret, purpose, body)):
        raise InvalidLink("signature does not match")
    try:
        document = json.loads(_b64decode(body))
    except ValueError:
        raise InvalidLink("payload is not JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("exp"), int):
        raise InvalidLink("payload lacks an expiry")
    moment = now or utcnow()
    if moment.timestamp() >= document["exp"]:
        raise ExpiredLink("link expired")
    return document
