"""Bearer tokens for API clients: random, shown once, stored only as a SHA-256 hash.

A token looks like ``hd_portal_<43 random chars>``; its first characters are kept in clear
(``token_prefix``) so an operator can tell tokens apart without being able to use them.
"""

from __future__ import annotations

import hashlib
import secrets

from services.ticket_api.models import ApiClientKind

PREFIX_LENGTH = 16


def new_token(kind: ApiClientKind) -> str:
    return f"hd_{kind.value}_{secrets.token_urlsafe(32)}"


def token_hash(token: str) -> str:
    # Tokens carry 256 random bits, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(token.encode()).hexdigest()


def token_prefix(token: str) -> str:
    return token[:PREFIX_LENGTH]
