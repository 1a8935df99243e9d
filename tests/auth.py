"""Access tokens for tests, signed with this run's key (tests/conftest.py sets it up), and
the principals of the authorization matrix."""

from __future__ import annotations

import os
from pathlib import Path
from uuid import UUID

from services.ticket_api.identity.models import PORTAL_SCOPES
from shared.ids import new_id
from shared.principal import Principal, PrincipalKind
from shared.tokens import KeyStore, TokenIssuer


def issuer() -> TokenIssuer:
    return TokenIssuer(
        KeyStore(Path(os.environ["TICKET_API_JWT_KEYS_DIR"])),
        issuer=os.environ.get("HELPDESK_JWT_ISSUER", "helpdesk"),
        audience=os.environ.get("HELPDESK_JWT_AUDIENCE", "helpdesk-api"),
    )


# A day: modules make tokens when pytest collects them, and a whole run can outlast minutes.
TEST_TOKEN_TTL_SECONDS = 24 * 3600


def issue_token(
    principal: Principal, *, ttl_seconds: int = TEST_TOKEN_TTL_SECONDS, now: float | None = None
) -> str:
    return issuer().issue(principal, ttl_seconds=ttl_seconds, now=now).token


def bearer(principal: Principal) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(principal)}"}


def admin(agent_id: UUID | None = None) -> Principal:
    """An admin; with ``agent_id`` one who is also an agent (can log time, be assigned)."""
    return Principal(
        kind=PrincipalKind.ADMIN, subject_id=agent_id or new_id(), name="Test Admin", agent_id=agent_id
    )


def agent(agent_id: UUID | None = None) -> Principal:
    subject = agent_id or new_id()
    return Principal(kind=PrincipalKind.AGENT, subject_id=subject, name="Test Agent", agent_id=subject)


def portal(*organization_ids: UUID | str, scopes: tuple[str, ...] = PORTAL_SCOPES) -> Principal:
    return Principal(
        kind=PrincipalKind.PORTAL,
        subject_id=new_id(),
        name="Test Portal",
        organization_ids=frozenset(UUID(str(org)) for org in organization_ids),
        scopes=frozenset(scopes),
    )


def customer(organization_id: UUID | str, contact_id: UUID | None = None) -> Principal:
    contact = contact_id or new_id()
    return Principal(
        kind=PrincipalKind.CUSTOMER,
        subject_id=contact,
        name="Test Customer",
        organization_ids=frozenset({UUID(str(organization_id))}),
        contact_id=contact,
    )


def service(name: str) -> Principal:
    return Principal(kind=PrincipalKind.SERVICE, subject_id=new_id(), name=name)
