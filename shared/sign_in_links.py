"""Customers' sign-in links: ticket_api asks for one (an event with a nonce), the notifier
makes and mails the token, ticket_api redeems it once. Both sides sign with the common secret."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from shared import signed_links

PURPOSE = "customer-sign-in"
PATH = "/sign-in"


def make_token(contact_id: UUID, nonce: str, expires_at: datetime, *, secret: str) -> str:
    return signed_links.sign(
        {"contact_id": str(contact_id), "nonce": nonce}, purpose=PURPOSE, secret=secret, expires_at=expires_at
    )


def link(public_base_url: str, token: str) -> str:
    """Where the customer's browser goes; the token rides in the fragment, so it never reaches
    a server log. The portal front-end posts it to ``/api/v1/auth/magic-link/redeem``."""
    return f"{public_base_url.rstrip('/')}{PATH}#token={token}"


def read_token(token: str, *, secret: str, now: datetime | None = None) -> tuple[UUID, str, int]:
    """(contact id, nonce, expiry) of a genuine, unexpired token; raises ``signed_links.InvalidLink``."""
    payload = signed_links.verify(token, purpose=PURPOSE, secret=secret, now=now)
    try:
        return UUID(payload["contact_id"]), str(payload["nonce"]), int(payload["exp"])
    except (KeyError, ValueError):
        raise signed_links.InvalidLink("not a sign-in token") from None
