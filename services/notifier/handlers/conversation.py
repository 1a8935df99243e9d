"""Mail about a ticket's conversation and lifecycle: replies (to the customer, to the
consultant), status news and the closure with its feedback links."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.notifier import repository as repo
from services.notifier.context import Notifier
from services.notifier.delivery.webhooks import fan_out_webhooks
from services.notifier.handlers.projections import project_ticket, ticket_ref
from services.notifier.links import feedback_url
from services.notifier.models import (
    NotificationKind,
)
from services.notifier.recording import Mail, queue_email
from shared import events as ev
from shared.vocabulary import TicketStatus


async def on_message_added(session: AsyncSession, notifier: Notifier, event: ev.Event) -> None:
    p = ev.payload_of(event, ev.TicketMessageAddedV1)
    await project_ticket(session, p)
    if p.visibility != "public":
        return  # internal notes reach neither customers nor portals
    ticket = ticket_ref(p)
    if p.author_kind == "agent":
        agent = await repo.get_agent(session, p.author_id) if p.author_id else None
        author = agent.name if agent else f"{notifier.settings.company_name} Support"
        await queue_email(
            session,
            notifier,
            Mail(
                dedupe_key=str(event.id),
                event_type=event.type,
                kind=NotificationKind.AGENT_REPLY,
                recipient=p.contact.email,
                recipient_name=p.contact.name,
                ticket=ticket,
                context={"body": p.body, "author_name": author},
                from_name=f"{author} ({notifier.settings.company_name})" if agent else None,
                auto_submitted=None,  # a person wrote it
            ),
        )
    elif p.author_kind == "customer" and p.assignee_id is not None:
        agent = await repo.get_agent(session, p.assignee_id)
        if agent is not None and agent.active:
            await queue_email(
                session,
                notifier,
                Mail(
                    dedupe_key=str(event.id),
                    event_type=event.type,
                    kind=NotificationKind.CUSTOMER_REPLY_CONSULTANT,
                    recipient=agent.email,
                    recipient_name=agent.name,
                    ticket=ticket,
                    customer_facing=False,
                    context={"body": p.body, "customer_name": p.contact.name or p.contact.email},
                ),
            )
    await fan_out_webhooks(session, notifier, event, ticket.organization_id)


def status_change_is_news(from_status: str, to_status: str) -> bool:
    """Whether the customer hears of a status change by itself. Not: closing (the closure mail
    says it), nor the changes a reply makes (first agent reply new → open; the customer's own
    answer pending_customer → open): the reply's own mail covers those."""
    if to_status == TicketStatus.CLOSED:
        return False
    return (from_status, to_status) not in {
        (TicketStatus.NEW, TicketStatus.OPEN),
        (TicketStatus.PENDING_CUSTOMER, TicketStatus.OPEN),
    }


async def on_status_changed(session: AsyncSession, notifier: Notifier, event: ev.Event) -> None:
    p = ev.payload_of(event, ev.TicketStatusChangedV1)
    await project_ticket(session, p)
    if status_change_is_news(p.from_status, p.to_status):
        await queue_email(
            session,
            notifier,
            Mail(
                dedupe_key=str(event.id),
                event_type=event.type,
                kind=NotificationKind.STATUS_UPDATE,
                recipient=p.contact.email,
                recipient_name=p.contact.name,
                ticket=ticket_ref(p),
                context={"status": p.to_status, "reopened": p.from_status == TicketStatus.CLOSED},
            ),
        )
    await fan_out_webhooks(session, notifier, event, p.organization.id if p.organization else None)


async def on_ticket_closed(session: AsyncSession, notifier: Notifier, event: ev.Event) -> None:
    p = ev.payload_of(event, ev.TicketClosedV1)
    await project_ticket(session, p)
    now = notifier.clock()
    links = {
        f"{rating}_url": feedback_url(
            notifier, ticket_id=p.ticket_id, email=p.contact.email, rating=rating, now=now
        )
        for rating in ("happy", "unhappy")
    }
    await queue_email(
        session,
        notifier,
        Mail(
            dedupe_key=str(event.id),
            event_type=event.type,
            kind=NotificationKind.CLOSURE,
            recipient=p.contact.email,
            recipient_name=p.contact.name,
            ticket=ticket_ref(p),
            context=links,
        ),
    )
    await fan_out_webhooks(session, notifier, event, p.organization.id if p.organization else None)
