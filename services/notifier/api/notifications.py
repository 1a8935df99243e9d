from __future__ import annotations

import base64
import binascii
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Response

from services.notifier import admin
from services.notifier import repository as repo
from services.notifier.deps import AdminCaller, AppNotifier, StaffCaller, Uow
from services.notifier.models import DeliveryState, Notification, NotificationKind
from services.notifier.schemas import NotificationDetail, NotificationPublic, SuppressionPublic
from shared.auth import staff_principal
from shared.email_address import normalize_email
from shared.pagination import InvalidCursor, Page, decode_cursor, page_of
from shared.problems import Unprocessable, problem_responses

# Sent mail carries personal data and signed links that act for its recipient: the log is for
# agents and admins only (a portal sees the delivery states of its own webhooks, under /webhooks).
router = APIRouter(
    prefix="/notifications",
    tags=["notifications"],
    dependencies=[Depends(staff_principal)],
    responses=problem_responses(401, 403),
)


def _public(notification: Notification) -> NotificationPublic:
    return NotificationPublic.model_validate(notification, from_attributes=True)


@router.get("/suppressions", responses=problem_responses(400, 401, 403, 422))
async def list_suppressions(
    uow: Uow,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> Page[SuppressionPublic]:
    """Addresses the relay refused for good (5xx); nothing is sent to them until lifted."""
    rows = await repo.list_suppressions(uow.session, limit=limit + 1, after=_decode_address(cursor))
    more = len(rows) > limit
    return Page[SuppressionPublic](
        items=[SuppressionPublic.model_validate(row, from_attributes=True) for row in rows[:limit]],
        next_cursor=_encode_address(rows[limit - 1].address) if more else None,
    )


def _encode_address(address: str) -> str:
    return base64.urlsafe_b64encode(address.encode()).decode().rstrip("=")


def _decode_address(cursor: str | None) -> str | None:
    if not cursor:
        return None
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, binascii.Error):
        raise InvalidCursor("Pass back the next_cursor of a previous page unchanged.") from None


@router.delete("/suppressions/{address}", status_code=204, responses=problem_responses(401, 403, 404, 422))
async def lift_suppression(address: str, uow: Uow, principal: AdminCaller) -> Response:
    """Allow mail to an address again (admins), e.g. after the customer fixed their mailbox."""
    try:
        normalized = normalize_email(address)
    except ValueError as error:
        raise Unprocessable(str(error)) from None
    await admin.lift_suppression(uow, principal, normalized)
    await uow.commit()
    return Response(status_code=204)


@router.get("", responses=problem_responses(401, 403, 422))
async def list_notifications(
    uow: Uow,
    ticket_id: UUID | None = None,
    state: DeliveryState | None = None,
    recipient: str | None = Query(None, max_length=320),
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> Page[NotificationPublic]:
    """The notification log (agents and admins): what was sent to whom, when, and how it went.
    Filter by ticket (`ticket_id`), `state` or `recipient`."""
    rows = await repo.list_notifications(
        uow.session,
        ticket_id=ticket_id,
        state=state.value if state else None,
        recipient=recipient,
        limit=limit + 1,
        after=decode_cursor(cursor),
    )
    return page_of([_public(n) for n in rows], [n.id for n in rows], limit)


@router.get("/{notification_id}", responses=problem_responses(401, 403, 404, 422))
async def get_notification(notification_id: UUID, uow: Uow, principal: StaffCaller) -> NotificationDetail:
    """One notification with the text that was sent and its threading headers."""
    notification = await admin.visible_notification(uow.session, principal, notification_id)
    detail = NotificationDetail.model_validate(notification, from_attributes=True)
    if notification.kind == NotificationKind.SIGN_IN_LINK:
        detail.text_body = "[not shown: this mail carries a sign-in link]"
    return detail


@router.post(
    "/{notification_id}/resend", status_code=201, responses=problem_responses(401, 403, 404, 409, 422)
)
async def resend_notification(
    notification_id: UUID, uow: Uow, principal: StaffCaller, notifier: AppNotifier
) -> NotificationPublic:
    """Send a copy again now, threaded with the ticket's other mail (agents and admins)."""
    copy = await admin.resend_notification(uow, notifier, principal, notification_id)
    await uow.commit()
    return _public(copy)
