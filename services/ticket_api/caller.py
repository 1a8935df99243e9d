"""Who calls: the caller of a request or job, the staff and admin guards, and the audit trail
of what they change."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from services.ticket_api.tickets import repository as ticket_repo
from shared import auth
from shared.principal import Principal
from shared.uow import UnitOfWork


@dataclass(frozen=True)
class Caller:
    """Who asks (a person, portal or service, as their token says) and the request it is part of."""

    principal: Principal
    request_id: str | None


def require_staff(caller: Caller) -> None:
    auth.require_staff(caller.principal)


def require_admin(caller: Caller) -> None:
    auth.require_admin(caller.principal)


async def audit(
    uow: UnitOfWork, caller: Caller, entity_type: str, entity_id: UUID, action: str, changes: dict[str, Any]
) -> None:
    await ticket_repo.add_audit(
        uow.session,
        entity_type=entity_type,
        entity_id=entity_id,
        action=action,
        actor=caller.principal.audit_ref,
        changes=jsonable(changes),
        request_id=caller.request_id,
    )


def jsonable(value: Any) -> Any:
    """``value`` as the audit trail and events store it: ids, times and enums as strings."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def changes_between(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    """``{field: [before, after]}`` for each field ``after`` changes."""
    return {key: [before[key], value] for key, value in after.items() if before[key] != value}
