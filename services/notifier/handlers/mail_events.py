"""Events about mail itself: bounces (suppress the address), sign-in links customers asked
for, and attachments refused from a customer's mail."""

from __future__ import annotations

import re

from sqlalchemy.ext.asyncio import AsyncSession

from services.notifier import repository as repo
from services.notifier.context import Notifier
from services.notifier.links import TicketRef
from services.notifier.models import (
    NotificationKind,
)
from services.notifier.recording import Mail, queue_email
from shared import events as ev
from shared import sign_in_links
from shared.time_format import format_instant


async def on_email_bounced(session: AsyncSession, notifier: Notifier, event: ev.Event) -> None:
    """A bounce report for mail we sent (ticket_api checked its Message-ID's MAC): suppress."""
    p = ev.payload_of(event, ev.EmailBouncedV1)
    if not p.permanent:
        return
    for address in p.recipients:
        await repo.add_suppression(
            session,
            {
                "address": address.lower(),
                "reason": f"bounce report: {p.diagnostic}"[:2000],
                "smtp_code": None,
                "notification_id": None,
                "created_at": notifier.clock(),
            },
        )


async def on_sign_in_requested(session: AsyncSession, notifier: Notifier, event: ev.Event) -> None:
    """Mail a customer the sign-in link ticket_api asked for (the token is made here, with the
    common secret: the event alone signs nobody in). The API never shows this mail's body."""
    p = ev.payload_of(event, ev.CustomerSignInRequestedV1)
    token = sign_in_links.make_token(p.contact_id, p.nonce, p.expires_at, secret=notifier.secret)
    await queue_email(
        session,
        notifier,
        Mail(
            dedupe_key=str(event.id),
            event_type=event.type,
            kind=NotificationKind.SIGN_IN_LINK,
            recipient=p.email,
            recipient_name=p.name,
            ticket=None,
            customer_facing=False,
            context={
                "url": sign_in_links.link(notifier.settings.public_base_url, token),
                "expires_at": format_instant(p.expires_at, notifier.settings.office_timezone),
                "ticket_number": p.ticket_number,
            },
        ),
    )


def file_size(size_bytes: int) -> str:
    """Sizes as ticket_api's limits state them (MB of 1024 × 1024 bytes)."""
    if size_bytes < 1024 * 1024:
        return f"{max(size_bytes // 1024, 1)} KB"
    return f"{size_bytes / (1024 * 1024):.1f} MB"


async def on_attachments_refused(session: AsyncSession, notifier: Notifier, event: ev.Event) -> None:
    """Tell the sender which attachments of their mail were not kept and the limits, as an
    automatic answer threaded under their message."""
    p = ev.payload_of(event, ev.EmailAttachmentsRefusedV1)
    view = await repo.get_ticket_view(session, p.ticket_id) if p.ticket_id else None
    ticket = None
    if p.ticket_id is not None and p.ticket_number is not None:
        ticket = TicketRef(
            id=p.ticket_id,
            number=p.ticket_number,
            subject=view.subject if view else p.subject,
            organization_id=view.organization_id if view else None,
        )
    original = re.sub(r"^(\s*re\s*:\s*)+", "", p.subject, flags=re.IGNORECASE).strip() or "(no subject)"
    if ticket is not None and f"[{ticket.number}]" not in original:
        original = f"[{ticket.number}] {original}"
    await queue_email(
        session,
        notifier,
        Mail(
            dedupe_key=f"attachments_refused:{p.inbound_email_id}",
            event_type=event.type,
            kind=NotificationKind.ATTACHMENTS_REFUSED,
            recipient=p.recipient,
            recipient_name=p.recipient_name,
            ticket=ticket,
            context={
                "original_subject": original,
                "refused": [
                    {
                        "filename": r.filename,
                        "size": file_size(r.size_bytes),
                        "reason": r.reason,
                    }
                    for r in p.refused
                ],
                "limits": {
                    "per_file": file_size(p.max_attachment_bytes),
                    "count": p.max_attachments,
                    "total": file_size(p.max_total_bytes),
                },
            },
            auto_submitted="auto-replied",  # RFC 3834: an automatic answer to their mail
            answers=p.in_reply_to,
        ),
    )
