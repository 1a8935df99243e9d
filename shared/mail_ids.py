"""Message-IDs and reply addresses that name what they belong to, with a MAC.

Outbound mail about a ticket carries a Message-ID ``<hd.<nonce>.<id>.<mac>@domain>`` and a
Reply-To ``support+<id><mac>@domain``. A reply quoting either (In-Reply-To/References, or the
address it was sent to) leads back to the id without a lookup, and nobody can make one up for
another id without the secret. Ids and MACs are lower-case base32 (mail systems may fold the
case of local parts), the MAC is 80 bits of HMAC-SHA256 under a key per purpose.

Keys rotate without losing threads: new ids are made with the current key, and an id made
with an older key still checks while that key is listed after it (:data:`MacKeys`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from uuid import UUID

# The current key, or the current key followed by older ones still accepted.
MacKeys = str | bytes | Sequence[str | bytes]

_MAC_BYTES = 10
_ID_CHARS = 26  # 16 bytes in unpadded base32
_MAC_CHARS = 16  # 10 bytes in base32
_MESSAGE_ID = re.compile(r"^<?hd\.([a-z0-9]{1,32})\.([a-z2-7]{26})\.([a-z2-7]{16})@([^<>@\s]+)>?$")
_REPLY_TOKEN = re.compile(r"^([a-z2-7]{26})([a-z2-7]{16})$")


def _b32(raw: bytes) -> str:
    return base64.b32encode(raw).decode("ascii").rstrip("=").lower()


def _unb32(text: str) -> bytes | None:
    try:
        return base64.b32decode(text.upper() + "=" * (-len(text) % 8))
    except (binascii.Error, ValueError):
        return None


def _mac(secret: str | bytes, purpose: bytes, raw_id: bytes) -> bytes:
    key = hmac.new(secret.encode() if isinstance(secret, str) else secret, purpose, hashlib.sha256).digest()
    return hmac.new(key, raw_id, hashlib.sha256).digest()[:_MAC_BYTES]


def _keys(secret: MacKeys) -> Sequence[str | bytes]:
    keys = (secret,) if isinstance(secret, str | bytes) else secret
    if not keys:
        raise ValueError("no MAC key")
    return keys


def _check(secret: MacKeys, purpose: bytes, id_text: str, mac_text: str) -> UUID | None:
    raw_id, mac = _unb32(id_text), _unb32(mac_text)
    if raw_id is None or mac is None or len(raw_id) != 16:
        return None
    if not any(hmac.compare_digest(mac, _mac(key, purpose, raw_id)) for key in _keys(secret)):
        return None
    return UUID(bytes=raw_id)


_MESSAGE_ID_PURPOSE = b"helpdesk/message-id/v1"
_REPLY_TOKEN_PURPOSE = b"helpdesk/reply-token/v1"


def make_message_id(owner_id: UUID, *, secret: MacKeys, domain: str) -> str:
    """A new, unique Message-ID (with angle brackets) that names ``owner_id``."""
    raw = owner_id.bytes
    nonce = secrets.token_hex(8)
    mac = _mac(_keys(secret)[0], _MESSAGE_ID_PURPOSE, raw)
    return f"<hd.{nonce}.{_b32(raw)}.{_b32(mac)}@{domain}>"


def owner_of_message_id(message_id: str, *, secret: MacKeys) -> UUID | None:
    """The id a Message-ID of ours names, or ``None`` (not ours, altered, or forged)."""
    match = _MESSAGE_ID.match(message_id.strip().lower()) if len(message_id) <= 255 else None
    if match is None:
        return None
    return _check(secret, _MESSAGE_ID_PURPOSE, match.group(2), match.group(3))


def make_reply_token(owner_id: UUID, *, secret: MacKeys) -> str:
    """The token that goes after the ``+`` of a plus-addressed Reply-To (42 characters)."""
    raw = owner_id.bytes
    return _b32(raw) + _b32(_mac(_keys(secret)[0], _REPLY_TOKEN_PURPOSE, raw))


def owner_of_reply_token(token: str, *, secret: MacKeys) -> UUID | None:
    match = _REPLY_TOKEN.match(token.strip().lower())
    if match is None:
        return None
    return _check(secret, _REPLY_TOKEN_PURPOSE, match.group(1), match.group(2))


def plus_address(base_address: str, token: str) -> str:
    """``support@example.test`` + token → ``support+<token>@example.test``."""
    local, _, domain = base_address.rpartition("@")
    if not local or not domain:
        raise ValueError(f"{base_address!r} is not an email address")
    return f"{local}+{token}@{domain}"


def token_of_plus_address(address: str, base_address: str) -> str | None:
    """The token of ``support+<token>@domain`` when ``base_address`` is ``support@domain``."""
    local, _, domain = address.strip().lower().rpartition("@")
    base_local, _, base_domain = base_address.lower().rpartition("@")
    if domain != base_domain or not local.startswith(base_local + "+"):
        return None
    return local[len(base_local) + 1 :] or None
