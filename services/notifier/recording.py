"""Recording mail: a notification row with the rendered mail (its template, Message-ID and
thread), unique per source x recipient x kind, written in the caller's transaction; sending is
a job of its own after commit (:mod:`services.notifier.delivery`)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from services.notifier import repository as repo
from services.notifier.context import Notifier
from services.notifier.delivery_policy import LEASE
from services.notifier.dispatch import SEND_EMAIL, Job
from services.notifier.links import TicketRef, mail_ticket_link
from services.notifier.models import (
    DeliveryState,
    Notification,
    NotificationKind,
)
from services.notifier.rendering import Rendered, render
from services.notifier.settings import WEEKDAY_NAMES, Settings
from shared.ids import new_id
from shared.mail_ids import make_message_id, make_reply_token, plus_address


def office_hours_text(settings: Settings, timezone: str) -> str:
    days = [WEEKDAY_NAMES.index(d) for d in settings.office_days.split(",")]
    names = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
    ordered = sorted(days)
    contiguous = ordered == list(range(ordered[0], ordered[-1] + 1))
    span = (
        f"{names[ordered[0]]} to {names[ordered[-1]]}"
        if contiguous and len(ordered) > 2
        else ", ".join(names[d] for d in ordered)
    )

    def clock(t: Any) -> str:
        return f"{t.hour % 12 or 12}:{t.minute:02d} {'AM' if t.hour < 12 else 'PM'}"

    return f"{span}, {clock(settings.office_opens)} to {clock(settings.office_closes)} ({timezone})"


def base_context(settings: Settings) -> dict[str, Any]:
    return {
        "company": {
            "name": settings.company_name,
            "postal_address": settings.company_postal_address,
            "phone": settings.company_phone,
            "support_address": settings.support_address,
            "accounting_address": settings.accounting_address,
        },
        "office_hours": office_hours_text(settings, settings.office_timezone),
    }


def render_mail(
    settings: Settings,
    kind: NotificationKind,
    *,
    recipient_name: str | None,
    ticket: TicketRef | None,
    ticket_link: str | None,
    context: dict[str, Any],
) -> Rendered:
    """A mail's subject and parts: the template of ``kind`` with what every mail gets
    (``ticket_link``: :func:`mail_ticket_link`, for this recipient)."""
    full_context = {
        **base_context(settings),
        "recipient_name": recipient_name or "there",
        "ticket": (
            {"number": ticket.number, "subject": ticket.subject, "url": ticket_link} if ticket else None
        ),
        **context,
    }
    return render(kind.value, full_context)


@dataclass(frozen=True)
class Mail:
    """One mail to record: which (``kind``, its template), for which source (``dedupe_key``:
    once per source x recipient x kind; ``event_type``), to whom, about which ticket, what its
    template gets (``context``) and how it goes out."""

    kind: NotificationKind
    dedupe_key: str
    event_type: str
    recipient: str
    recipient_name: str | None
    ticket: TicketRef | None
    context: dict[str, Any]
    # The customer's side of the ticket: its signed links, Reply-To into the ticket, its thread.
    customer_facing: bool = True
    from_name: str | None = None
    from_address: str | None = None
    auto_submitted: str | None = "auto-generated"
    attachments: Sequence[dict[str, Any]] = ()
    organization_id: UUID | None = None
    not_before: datetime | None = None  # due later (deferred); None: due now
    answers: str | None = None  # the recipient's own mail this one answers (In-Reply-To)


def _rendered(notifier: Notifier, mail: Mail, *, recipient: str, now: datetime) -> Rendered:
    link = (
        mail_ticket_link(
            notifier, mail.ticket, recipient=recipient, customer_facing=mail.customer_facing, now=now
        )
        if mail.ticket
        else None
    )
    return render_mail(
        notifier.settings,
        mail.kind,
        recipient_name=mail.recipient_name,
        ticket=mail.ticket,
        ticket_link=link,
        context=mail.context,
    )


async def queue_email(session: AsyncSession, notifier: Notifier, mail: Mail) -> UUID | None:
    """Record one mail (rendered now, sent by its own job after commit). ``None`` when this
    source already produced this kind of mail for this recipient."""
    settings = notifier.settings
    now = notifier.clock()
    recipient = mail.recipient.lower()
    ticket, not_before = mail.ticket, mail.not_before
    rendered = _rendered(notifier, mail, recipient=recipient, now=now)
    notification_id = new_id()
    message_id = make_message_id(
        ticket.id if ticket else notification_id, secret=notifier.secret, domain=settings.mail_domain
    )
    references = await repo.thread_message_ids(session, ticket.id) if ticket else []
    parent = threadable_message_id(mail.answers)
    if parent is not None:
        references = [m for m in references if m != parent] + [parent]
    reply_to = None
    if ticket and mail.customer_facing:
        reply_to = plus_address(settings.support_address, make_reply_token(ticket.id, secret=notifier.secret))
    values: dict[str, Any] = {
        "id": notification_id,
        "dedupe_key": mail.dedupe_key,
        "event_type": mail.event_type,
        "kind": mail.kind.value,
        "recipient": recipient,
        "ticket_id": ticket.id if ticket else None,
        "ticket_number": ticket.number if ticket else None,
        "organization_id": mail.organization_id or (ticket.organization_id if ticket else None),
        "from_name": mail.from_name or f"{settings.company_name} Support",
        "from_address": mail.from_address or settings.support_address,
        "reply_to": reply_to,
        "subject": rendered.subject,
        "text_body": rendered.text,
        "html_body": rendered.html,
        "message_id": message_id,
        "in_reply_to": references[-1] if references else None,
        "reference_ids": references,
        "auto_submitted": mail.auto_submitted,
        "attachments": list(mail.attachments),
        "state": DeliveryState.PENDING,
        "attempts": 0,
        "next_attempt_at": not_before or now,
        "created_at": now,
        "updated_at": now,
    }
    # Due now in a worker: the row is born claimed (this attempt counted, a lease running) and
    # sent right after the commit, with no claim of its own. A crash in between leaves a lease
    # that runs out, and the sweeper sends it (the same Message-ID).
    send_here = notifier.dispatcher.run_here is not None and not_before is None
    suppression = await repo.get_suppression(session, recipient) if send_here else None
    if suppression is not None:
        values.update(state=DeliveryState.SUPPRESSED, last_error=f"address suppressed: {suppression.reason}")
    elif send_here:
        values.update(state=DeliveryState.SENDING, attempts=1, lease_until=now + LEASE)
    if not await repo.insert_notification(session, values):
        return None
    if ticket and mail.customer_facing:
        # The customer's thread holds only mail the customer got: a customer mail never answers
        # (In-Reply-To) or names a mail sent to staff. Staff mail threads under the customer's.
        await repo.add_thread_message(session, ticket.id, message_id, now)
    if suppression is None:
        claimed = Notification(**values) if send_here else None
        notifier.dispatcher.after_commit(
            session, Job(SEND_EMAIL, str(notification_id), 0, defer_until=not_before, claimed=claimed)
        )
    return notification_id


async def rewrite_unsent(
    session: AsyncSession, notifier: Notifier, waiting: Notification, mail: Mail, *, due_now: bool
) -> bool:
    """Put what ``mail`` says now into a mail still waiting to be sent (no attempt has claimed
    it: one claimed, or sent, is never changed); with ``due_now`` it goes out at once. ``True``
    when it was rewritten."""
    now = notifier.clock()
    rendered = _rendered(notifier, mail, recipient=waiting.recipient, now=now)
    if not await repo.replace_unsent(
        session,
        waiting.id,
        subject=rendered.subject,
        text_body=rendered.text,
        html_body=rendered.html,
        updated_at=now,
        **({"next_attempt_at": now} if due_now else {}),
    ):
        return False
    if due_now:
        send_now_not_later(session, notifier, waiting.id)
    return True


def send_now_not_later(session: AsyncSession, notifier: Notifier, notification_id: UUID) -> None:
    """A waiting mail made due now: a job of its own once ``session`` commits, and the deferred
    one taken off the queue."""
    waiting = Job(SEND_EMAIL, str(notification_id), 0)
    notifier.dispatcher.after_commit(
        session, Job(SEND_EMAIL, str(notification_id), 0, variant="now", withdraws=waiting.job_id)
    )


_MESSAGE_ID = re.compile(r"<[^<>\s]{1,250}>")


def threadable_message_id(message_id: str | None) -> str | None:
    """``message_id`` when it is safe to put in a header (one ``<…>`` token, no whitespace);
    else ``None``: it came from someone else's mail and must not break ours."""
    if message_id is None:
        return None
    candidate = message_id.strip()
    if not candidate.startswith("<"):
        candidate = f"<{candidate}>"
    return candidate if _MESSAGE_ID.fullmatch(candidate) else None
