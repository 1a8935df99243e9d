"""Staff mail before and at an SLA target: warnings and breaches (``sla.warning``,
``sla.breached``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.notifier.context import Notifier
from services.notifier.handlers.projections import staff_timezone
from services.notifier.links import TicketRef
from services.notifier.models import (
    NotificationKind,
)
from services.notifier.recording import Mail, queue_email
from shared import events as ev
from shared.time_format import format_instant


async def _sla_mail(
    session: AsyncSession,
    notifier: Notifier,
    event: ev.Event,
    p: ev.SlaWarningV1 | ev.SlaBreachedV1,
    kind: NotificationKind,
    context: dict[str, Any],
    *,
    include_team: bool,
) -> None:
    ticket = TicketRef(
        id=p.ticket_id,
        number=p.number,
        subject=p.subject,
        organization_id=p.organization.id if p.organization else None,
    )
    # Staff read in their own timezone: the consultant in theirs, the team in the office's.
    recipients: list[tuple[str, str, str]] = []
    if p.assignee is not None:
        recipients.append(
            (p.assignee.email, p.assignee.name, await staff_timezone(session, notifier, p.assignee.id))
        )
    team = notifier.settings.team_address
    if team and (include_team or p.assignee is None):
        recipients.append((team, "team", notifier.settings.office_timezone))
    for email, name, timezone in recipients:
        await queue_email(
            session,
            notifier,
            Mail(
                dedupe_key=str(event.id),
                event_type=event.type,
                kind=kind,
                recipient=email,
                recipient_name=name,
                ticket=ticket,
                customer_facing=False,
                context={
                    "consultant": {"name": name},
                    "target": p.target.replace("_", " "),
                    "due_at": format_instant(p.due_at, timezone),
                    "priority": p.priority,
                    **context,
                },
            ),
        )


async def on_sla_warning(session: AsyncSession, notifier: Notifier, event: ev.Event) -> None:
    p = ev.payload_of(event, ev.SlaWarningV1)
    await _sla_mail(
        session,
        notifier,
        event,
        p,
        NotificationKind.SLA_WARNING,
        {"remaining": time_left(p.target_minutes, p.share)},
        include_team=False,
    )


def time_left(target_minutes: int, share_used: float) -> str:
    """The business time left when ``share_used`` of the target is used, to the nearest
    minute: ``time_left(60, 0.8)`` is "12 min" (not 11: 60 x 0.2 is 11.999... in floats)."""
    minutes = max(round(target_minutes * (1 - share_used)), 0)
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest} min" if hours else f"{rest} min"


async def on_sla_breached(session: AsyncSession, notifier: Notifier, event: ev.Event) -> None:
    p = ev.payload_of(event, ev.SlaBreachedV1)
    await _sla_mail(
        session,
        notifier,
        event,
        p,
        NotificationKind.SLA_BREACH,
        # The mail shows the priority the ticket has now; "escalated" only when it was raised.
        {
            "escalated": p.escalated_priority,
            "previous_priority": p.priority,
            "priority": p.escalated_priority or p.priority,
        },
        include_team=True,
    )
