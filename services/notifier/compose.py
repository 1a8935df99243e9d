"""Turning a stored notification into the MIME message the relay receives."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from services.notifier.models import Notification


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    maintype: str
    subtype: str
    params: tuple[tuple[str, str], ...] = ()


def build_message(
    notification: Notification, attachments: list[Attachment], *, display_name: str, now: datetime
) -> EmailMessage:
    """multipart/mixed( multipart/alternative(text, html), attachments… ) with threading headers."""
    message = EmailMessage()
    message["From"] = Address(display_name=display_name, addr_spec=notification.from_address)
    message["To"] = notification.recipient
    message["Subject"] = notification.subject
    message["Date"] = format_datetime(now)
    message["Message-ID"] = notification.message_id
    if notification.in_reply_to:
        message["In-Reply-To"] = notification.in_reply_to
    if notification.reference_ids:
        message["References"] = " ".join(notification.reference_ids)
    if notification.reply_to:
        message["Reply-To"] = notification.reply_to
    if notification.auto_submitted:
        # RFC 3834: tells responders not to answer; Exchange's own switch for the same.
        message["Auto-Submitted"] = notification.auto_submitted
        message["X-Auto-Response-Suppress"] = "All"
    if notification.ticket_number:
        message["X-Helpdesk-Ticket"] = notification.ticket_number
    message["X-Helpdesk-Notification"] = f"{notification.kind}; id={notification.id}"
    message.set_content(notification.text_body, subtype="plain", charset="utf-8")
    message.add_alternative(notification.html_body, subtype="html", charset="utf-8")
    for attachment in attachments:
        message.add_attachment(
            attachment.content,
            maintype=attachment.maintype,
            subtype=attachment.subtype,
            filename=attachment.filename,
            params=dict(attachment.params),
        )
    return message
