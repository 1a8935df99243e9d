"""Credential material: OAuth client ids and secrets, refresh tokens, agent passwords.

Secrets and refresh tokens carry 256 random bits, so a SHA-256 of them is safe to store and
fast to look up; passwords are people's choice, so they get argon2 (slow on purpose).
"""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

PREFIX_LENGTH = 12
_passwords = PasswordHasher()
# Compared against when the account does not exist, so both paths take as long.
_DUMMY_HASH = _passwords.hash(secrets.token_urlsafe(16))


def new_client_id() -> str:
    return f"hdc_{secrets.token_urlsafe(12)}"


def new_client_secret() -> str:
    return f"hds_{secrets.token_urlsafe(32)}"


def new_refresh_token() -> str:
    return f"hdr_{secrets.token_urlsafe(32)}"


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def visible_prefix(secret: str) -> str:
    return secret[:PREFIX_LENGTH]


def hash_password(password: str) -> str:
    return _passwords.hash(password)


def password_matches(password_hash: str | None, password: str) -> bool:
    """Constant work whether or not there is a hash to compare with."""
    try:
        return _passwords.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False
