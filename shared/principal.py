"""Who is calling, and which organizations' data they may reach.

Every route takes a :class:`Principal`; repositories filter by :meth:`Principal.org_scope`
so authorization is checked per object, in the query, not after the fact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from uuid import UUID


class PrincipalKind(StrEnum):
    ADMIN = "admin"
    AGENT = "agent"
    PORTAL = "portal"
    CUSTOMER = "customer"
    SERVICE = "service"


STAFF = frozenset({PrincipalKind.ADMIN, PrincipalKind.AGENT, PrincipalKind.SERVICE})


@dataclass(frozen=True)
class Principal:
    kind: PrincipalKind
    subject_id: UUID
    name: str
    organization_ids: frozenset[UUID] = field(default_factory=frozenset)
    agent_id: UUID | None = None
    contact_id: UUID | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    # The access token this principal came with (for logout), when it came with one.
    token_id: str | None = None
    token_expires_at: int | None = None
    # The sign-in session (refresh-token family) the token was issued in: closing the session
    # revokes every access token it issued.
    session_id: UUID | None = None

    @property
    def is_staff(self) -> bool:
        return self.kind in STAFF

    @property
    def is_admin(self) -> bool:
        return self.kind in (PrincipalKind.ADMIN, PrincipalKind.SERVICE)

    def org_scope(self) -> frozenset[UUID] | None:
        """``None`` for staff (every organization), else the organizations this caller serves."""
        return None if self.is_staff else self.organization_ids

    def has_scope(self, scope: str) -> bool:
        """Staff may do anything their role allows; portals only what their scopes grant."""
        return self.kind is not PrincipalKind.PORTAL or scope in self.scopes

    def can_see_organization(self, organization_id: UUID | None) -> bool:
        if self.is_staff:
            return True
        return organization_id is not None and organization_id in self.organization_ids

    @property
    def audit_ref(self) -> str:
        return f"{self.kind.value}:{self.subject_id}"
