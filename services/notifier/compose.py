"""Turning a stored notification into the MIME message the relay receives."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.headerregistry import Address, HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from services.notifier.models import Notification


class MessageIdListHeader(UnstructuredHeader):
    """In-Reply-To / References: message ids are never encoded (RFC 5322 §3.6.4). The default
    policy turns an id longer than a line into an RFC 2047 encoded-word, which mail clients
    cannot thread; this folds only between ids."""

    def fold(self, *, policy: Any) -> str:
        lines = [f"{self.name}:"]
        for message_id in str(self).split():
            if len(lines[-1]) + 1 + len(message_id) > policy.max_line_length and lines[-1] != f"{self.name}:":
                lines.append("")
            lines[-1] += f" {message_id}"
        return policy.linesep.join(lines) + policy.linesep


def _mail_policy() -> policy.EmailPolicy:
    headers = HeaderRegistry()
    headers.map_to_type("in-reply-to", MessageIdListHeader)
    headers.map_to_type("references", MessageIdListHeader)
    return policy.SMTP.clone(header_factory=headers)


MAIL_POLICY = _mail_policy()


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
    message = EmailMessage(policy=MAIL_POLICY)
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
