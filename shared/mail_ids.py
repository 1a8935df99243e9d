"""Message-IDs and reply addresses that name what they belong to, with a MAC.

Outbound mail about a ticket carries a Message-ID ``<hd.<nonce>.<id>.<mac>@domain>`` and a
Reply-To ``support+<id><mac>@domain``. A reply quoting either (In-Reply-To/References, or the
address it was sent to) leads back to the id without a lookup, and nobody can make one up for
another id without the secret. Ids and MACs are lower-case base32, the MAC is 80 bits of
HMAC-SHA256 under a key per purpose.

Every character counts: a Message-ID's MAC covers all of it (nonce, id and domain), a reply
token's covers its id, and both are canonical: a reference that does not re-encode to exactly
itself (another case, padding bits set, another nonce) is refused, so no altered copy of a real
reference names anything. Mail systems may fold the case of a whole local part, so a reply
token wholly in upper case is the same token; one with mixed case is not.

Message-IDs made before the MAC covered every character (v1: the MAC covered the id alone)
still check, canonically, so replies to mail sent before keep threading; their nonce and domain
were never covered and cannot be now. That grants nothing (a reference names a ticket, it does
not say who writes) and ends with the key: v1 ids are made by no code any more, so once
``HELPDESK_SECRET_KEY`` is rotated and the old key dropped, none checks.

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
_MESSAGE_ID = re.compile(r"^hd\.([0-9a-f]{16})\.([a-z2-7]{26})\.([a-z2-7]{16})@([^<>@\s]{1,200})$")
_REPLY_TOKEN = re.compile(r"^([a-z2-7]{26})([a-z2-7]{16})$")


def _b32(raw: bytes) -> str:
    return base64.b32encode(raw).decode("ascii").rstrip("=").lower()


def _unb32(text: str) -> bytes | None:
    """The bytes of canonical lower-case base32 (unused padding bits zero), else None."""
    try:
        raw = base64.b32decode(text.upper() + "=" * (-len(text) % 8))
    except (binascii.Error, ValueError):
        return None
    return raw if _b32(raw) == text else None


def _mac(secret: str | bytes, purpose: bytes, data: bytes) -> bytes:
    key = hmac.new(secret.encode() if isinstance(secret, str) else secret, purpose, hashlib.sha256).digest()
    return hmac.new(key, data, hashlib.sha256).digest()[:_MAC_BYTES]


def _keys(secret: MacKeys) -> Sequence[str | bytes]:
    keys = (secret,) if isinstance(secret, str | bytes) else secret
    if not keys:
        raise ValueError("no MAC key")
    return keys


def _macs_match(secret: MacKeys, purpose: bytes, data: bytes, mac_text: str) -> bool:
    mac = _unb32(mac_text)
    return mac is not None and any(
        hmac.compare_digest(mac, _mac(key, purpose, data)) for key in _keys(secret)
    )


_MESSAGE_ID_PURPOSE = b"helpdesk/message-id/v1"  # the MAC of the id alone: checked, never made
_MESSAGE_ID_PURPOSE_V2 = b"helpdesk/message-id/v2"  # the MAC of every other character
_REPLY_TOKEN_PURPOSE = b"helpdesk/reply-token/v1"


def _covered(nonce: str, id_text: str, domain: str) -> bytes:
    """What the MAC of a Message-ID covers: every character of it but the MAC."""
    return f"hd.{nonce}.{id_text}@{domain}".encode()


def make_message_id(owner_id: UUID, *, secret: MacKeys, domain: str) -> str:
    """A new, unique Message-ID (with angle brackets) that names ``owner_id``."""
    nonce, id_text = secrets.token_hex(8), _b32(owner_id.bytes)
    mac = _mac(_keys(secret)[0], _MESSAGE_ID_PURPOSE_V2, _covered(nonce, id_text, domain))
    return f"<hd.{nonce}.{id_text}.{_b32(mac)}@{domain}>"


def owner_of_message_id(message_id: str, *, secret: MacKeys) -> UUID | None:
    """The id a Message-ID of ours names, or ``None`` (not ours, altered, or forged). The
    angle brackets are optional; nothing else may differ from what we made."""
    text = message_id.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1]
    match = _MESSAGE_ID.match(text) if len(text) <= 255 else None
    if match is None:
        return None
    nonce, id_text, mac_text, domain = match.groups()
    raw_id = _unb32(id_text)
    if raw_id is None or len(raw_id) != 16:
        return None
    if _macs_match(secret, _MESSAGE_ID_PURPOSE_V2, _covered(nonce, id_text, domain), mac_text) or (
        _macs_match(secret, _MESSAGE_ID_PURPOSE, raw_id, mac_text)  # v1: mail sent before
    ):
        return UUID(bytes=raw_id)
    return None


def make_reply_token(owner_id: UUID, *, secret: MacKeys) -> str:
    """The token that goes after the ``+`` of a plus-addressed Reply-To (42 characters)."""
    raw = owner_id.bytes
    return _b32(raw) + _b32(_mac(_keys(secret)[0], _REPLY_TOKEN_PURPOSE, raw))


def owner_of_reply_token(token: str, *, secret: MacKeys) -> UUID | None:
    """The id a reply token names: as we made it, or wholly upper-cased by a mail system."""
    match = _REPLY_TOKEN.match(token.lower() if token.isupper() else token)
    if match is None:
        return None
    raw_id = _unb32(match.group(1))
    if raw_id is None or len(raw_id) != 16:
        return None
    return UUID(bytes=raw_id) if _macs_match(secret, _REPLY_TOKEN_PURPOSE, raw_id, match.group(2)) else None


def plus_address(base_address: str, token: str) -> str:
    """``support@example.test`` + token → ``support+<token>@example.test``."""
    local, _, domain = base_address.rpartition("@")
    if not local or not domain:
        raise ValueError(f"{base_address!r} is not an email address")
    return f"{local}+{token}@{domain}"


def token_of_plus_address(address: str, base_address: str) -> str | None:
    """The token of ``support+<token>@domain`` when ``base_address`` is ``support@domain``
    (the address compared without regard to case, the token returned as written)."""
    local, _, domain = address.strip().rpartition("@")
    base_local, _, base_domain = base_address.lower().rpartition("@")
    if domain.lower() != base_domain or not local.lower().startswith(base_local + "+"):
        return None
    return local[len(base_local) + 1 :] or None
