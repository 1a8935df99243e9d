"""A ticket's first mails: the acknowledgment (``ticket.created``), with triage's promise
(``ticket.triaged``), and the assignment news for the consultant ticket_api assigned
(``ticket.updated``); the team's alert when triage found nobody."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from services.notifier import repository as repo
from services.notifier.acknowledgment import Promise, office_hours_promise, triage_promise
from services.notifier.context import Notifier
from services.notifier.delivery.webhooks import fan_out_webhooks
from services.notifier.handlers.projections import project_ticket, staff_timezone, ticket_ref
from services.notifier.links import TicketRef, booking_url
from services.notifier.models import (
    AgentView,
    DeliveryState,
    NotificationKind,
    TicketSla,
    TicketView,
)
from services.notifier.recording import Mail, office_hours_text, queue_email, rewrite_unsent
from services.notifier.settings import Settings
from shared import events as ev
from shared.time_format import format_instant

log = logging.getLogger(__name__)


# An assignment told before ticket.created was handled (its event overtook ticket.created's):
# the customer's mail waits this long for the acknowledgment, which then tells it instead.
ASSIGNMENT_WAITS_FOR_ACKNOWLEDGMENT = timedelta(seconds=60)


def _triage_promise(
    settings: Settings, arrived_at: datetime, sla: TicketSla | None, *, reader_timezone: str | None
) -> Promise | None:
    """Triage's promise for a ticket that arrived at ``arrived_at``, told in the customer's
    ``reader_timezone``; ``None`` while triage has not decided (or its clock is paused)."""
    if sla is None or sla.first_response_due_at is None:
        return None
    return triage_promise(
        arrived_at,
        due_at=sla.first_response_due_at,
        timezone=sla.calendar_timezone,
        target_minutes=sla.first_response_target_minutes,
        clock_started_at=sla.first_response_clock_started_at,
        fallback=settings.office_hours(sla.calendar_timezone),
        fallback_business_hours=settings.first_response_business_hours,
        reader_timezone=reader_timezone,
        closed_days=[(date.fromisoformat(d["day"]), d["name"]) for d in sla.closed_days or []],
    )


def _acknowledgment_context(
    notifier: Notifier,
    promise: Promise,
    ticket: TicketRef,
    consultant: AgentView | None,
    *,
    email: str,
    sla_attached: bool,
) -> dict[str, Any]:
    """The acknowledgment's promise and, once ticket_api assigned one, the consultant (who,
    and where to book time)."""
    return {
        **promise.context(),
        "office_hours": office_hours_text(notifier.settings, promise.timezone),
        "sla_attached": sla_attached,
        **_consultant_context(notifier, ticket, consultant, email=email, now=notifier.clock()),
    }


# The first mails of a ticket (the acknowledgment, the assignment news) meet three events:
# ticket.created (ticket_api), ticket.triaged (triage: the SLA's due times) and ticket.updated
# (ticket_api: the assignee it applied). Whom to tell as the consultant has one source, the
# assignee ticket_api applied (``ticket_view``): triage's decision is only read for its due
# times and call task, and for whether an assignment is still to come. Every handler takes the
# ticket's lock first, so each sees what the others wrote, whatever their order.


def _promise(
    settings: Settings, arrived_at: datetime, sla: TicketSla | None, *, reader_timezone: str
) -> tuple[Promise, bool]:
    """What the acknowledgment promises, and whether it is triage's (else notifier's
    office-hours estimate, while triage has not decided or its clock is paused)."""
    promise = _triage_promise(settings, arrived_at, sla, reader_timezone=reader_timezone)
    if promise is not None:
        return promise, True
    hours = settings.office_hours(reader_timezone)
    estimate = office_hours_promise(
        arrived_at, hours, settings.first_response_business_hours, reader_timezone=reader_timezone
    )
    return estimate, False


def _settled(sla: TicketSla | None, view: TicketView, from_triage: bool) -> bool:
    """Whether the first mails have all they wait for: triage's promise, and the assignment it
    asked for applied by ticket_api (a consultant ticket_api refused is never named: the
    acknowledgment then goes out when its wait ends)."""
    return from_triage and sla is not None and sla.assignee_id in (None, view.assignee_id)


def _ack_wait(notifier: Notifier) -> datetime | None:
    seconds = notifier.settings.ack_wait_for_triage_seconds
    return notifier.clock() + timedelta(seconds=seconds) if seconds > 0 else None


async def on_ticket_created(session: AsyncSession, notifier: Notifier, event: ev.Event) -> None:
    """Acknowledge at once. The promise in it is triage's SLA and it names the consultant
    ticket_api assigned: when both are known already (their events overtook this one), it goes
    out now; else it is recorded now with notifier's office-hours estimate, due after a short
    wait (``on_ticket_triaged`` and ``on_ticket_updated`` put in what they bring and make it
    due at once when nothing else is awaited)."""
    p = ev.payload_of(event, ev.TicketCreatedV1)
    await repo.lock_acknowledgment(session, p.ticket_id)  # triage's event may be handled right now
    await project_ticket(session, p)
    view = await repo.get_ticket_view(session, p.ticket_id)  # a newer ticket.updated may be in it
    assert view is not None
    sla = await repo.get_ticket_sla(session, p.ticket_id)
    if p.acknowledge:  # else ticket_api's inbound rate limit: this sender got many already
        settings = notifier.settings
        reader = p.organization.timezone if p.organization else settings.office_timezone
        promise, from_triage = _promise(settings, p.created_at, sla, reader_timezone=reader)
        agent = await repo.get_agent(session, view.assignee_id) if view.assignee_id else None
        ticket = ticket_ref(p)
        sla_missing = p.organization is None or not p.organization.sla_signed
        await queue_email(
            session,
            notifier,
            Mail(
                dedupe_key=str(event.id),
                event_type=event.type,
                kind=NotificationKind.ACKNOWLEDGMENT,
                recipient=p.contact.email,
                recipient_name=p.contact.name,
                ticket=ticket,
                context=_acknowledgment_context(
                    notifier, promise, ticket, agent, email=p.contact.email, sla_attached=sla_missing
                ),
                # RFC 3834: answering their mail is auto-replied; a web/API ticket auto-generated.
                auto_submitted="auto-replied" if p.channel == "email" else "auto-generated",
                attachments=[{"kind": "sla_document"}] if sla_missing else [],
                answers=p.source_message_id,  # threaded under the customer's own mail
                not_before=None if _settled(sla, view, from_triage) else _ack_wait(notifier),
            ),
        )
    if view.assignee_id is not None:
        await _tell_assignment(
            session,
            notifier,
            event,
            view,
            contact=p.contact,
            organization=p.organization,
            sla=sla,
            detailed=True,
            customer_told=p.acknowledge,
            wait_for_acknowledgment=False,
        )
    await fan_out_webhooks(session, notifier, event, p.organization.id if p.organization else None)


async def settle_acknowledgment(
    session: AsyncSession, notifier: Notifier, view: TicketView, sla: TicketSla | None
) -> bool:
    """Put what is known now into the ticket's acknowledgment while it waits to be sent
    (triage's promise, the consultant ticket_api assigned, with the link to book time: one
    mail instead of two a few hundred milliseconds apart), and make it due now once nothing
    else is awaited. An acknowledgment already claimed for sending (or sent) is never changed,
    and none is ever added: ``True`` when one was rewritten."""
    acknowledgment = await repo.unsent_notification(session, view.ticket_id, NotificationKind.ACKNOWLEDGMENT)
    if acknowledgment is None:
        return False
    if view.created_at is None:
        log.warning(
            "ticket %s: no arrival time projected; its acknowledgment keeps its estimate", view.ticket_id
        )
        return False
    settings = notifier.settings
    promise, from_triage = _promise(
        settings, view.created_at, sla, reader_timezone=view.timezone or settings.office_timezone
    )
    agent = await repo.get_agent(session, view.assignee_id) if view.assignee_id else None
    if not from_triage and agent is None:
        return False  # nothing new to say: the estimate it holds
    sla_attached = any(spec.get("kind") == "sla_document" for spec in acknowledgment.attachments)
    ticket = _view_ref(view)
    mail = Mail(
        kind=NotificationKind.ACKNOWLEDGMENT,
        dedupe_key=acknowledgment.dedupe_key,
        event_type=acknowledgment.event_type,
        recipient=acknowledgment.recipient,
        recipient_name=view.contact_name,
        ticket=ticket,
        context=_acknowledgment_context(
            notifier, promise, ticket, agent, email=acknowledgment.recipient, sla_attached=sla_attached
        ),
    )
    return await rewrite_unsent(
        session, notifier, acknowledgment, mail, due_now=_settled(sla, view, from_triage)
    )


def _view_ref(view: TicketView) -> TicketRef:
    return TicketRef(
        id=view.ticket_id, number=view.number, subject=view.subject, organization_id=view.organization_id
    )


async def _tell_assignment(
    session: AsyncSession,
    notifier: Notifier,
    event: ev.Event,
    view: TicketView,
    *,
    contact: ev.ContactRef,
    organization: ev.OrganizationRef | None,
    sla: TicketSla | None,
    detailed: bool,
    customer_told: bool,
    wait_for_acknowledgment: bool,
) -> None:
    """The customer's mail (who their consultant is, where to book) and the consultant's (the
    ticket, the customer; for triage's assignment also the due time and a call task from
    ``sla``) about the assignee ticket_api applied. ``customer_told``: the acknowledgment
    carries the customer's part (a twin still waiting is merged into it, never sent).
    ``wait_for_acknowledgment``: ticket.created has not been handled yet, so the customer's
    mail waits for it (its acknowledgment will tell and take this one's place). A detailed
    consultant mail waits for triage's due time when triage has not decided yet
    (:func:`complete_consultant_mail`)."""
    agent = await repo.get_agent(session, view.assignee_id) if view.assignee_id else None
    if agent is None:
        log.warning(
            "ticket %s assigned to unknown agent %s: no assignment mail", view.number, view.assignee_id
        )
        return
    ticket = _view_ref(view)
    key = _assignment_key(ticket.id, agent.id)
    now = notifier.clock()
    if customer_told:
        await repo.merge_unsent(session, key, contact.email.lower(), NotificationKind.ASSIGNMENT_CUSTOMER)
    else:
        await queue_email(
            session,
            notifier,
            Mail(
                dedupe_key=key,
                event_type=event.type,
                kind=NotificationKind.ASSIGNMENT_CUSTOMER,
                recipient=contact.email,
                recipient_name=contact.name,
                ticket=ticket,
                context=_consultant_context(notifier, ticket, agent, email=contact.email, now=now),
                not_before=now + ASSIGNMENT_WAITS_FOR_ACKNOWLEDGMENT if wait_for_acknowledgment else None,
            ),
        )
    sla = sla if detailed else None
    mail = await _consultant_mail(
        session, notifier, event, view, agent, contact=contact, organization=organization, sla=sla
    )
    await queue_email(
        session, notifier, replace(mail, not_before=_ack_wait(notifier) if detailed and sla is None else None)
    )


async def _consultant_mail(
    session: AsyncSession,
    notifier: Notifier,
    event: ev.Event,
    view: TicketView,
    agent: AgentView,
    *,
    contact: ev.ContactRef,
    organization: ev.OrganizationRef | None,
    sla: TicketSla | None,
) -> Mail:
    """The consultant's assignment mail; with ``sla`` (triage's decision), the first response's
    due time in the consultant's own timezone and the call task it opened."""
    due = sla.first_response_due_at if sla else None
    return Mail(
        kind=NotificationKind.ASSIGNMENT_CONSULTANT,
        dedupe_key=_assignment_key(view.ticket_id, agent.id),
        event_type=event.type,
        recipient=agent.email,
        recipient_name=agent.name,
        ticket=_view_ref(view),
        customer_facing=False,
        context={
            "consultant": {"id": str(agent.id), "name": agent.name, "email": agent.email},
            "customer": {"name": contact.name, "email": contact.email},
            "organization": organization.name if organization else None,
            "priority": view.priority,
            "first_response_due_at": moment_or_none(due, await staff_timezone(session, notifier, agent.id)),
            "call_customer": bool(sla and sla.call_customer),
        },
    )


async def complete_consultant_mail(
    session: AsyncSession,
    notifier: Notifier,
    event: ev.Event,
    view: TicketView,
    sla: TicketSla,
    *,
    contact: ev.ContactRef,
    organization: ev.OrganizationRef | None,
) -> None:
    """The assignee's mail, recorded before triage's decision reached us, still waiting: put
    the due time and call task in and make it due now."""
    agent = await repo.get_agent(session, view.assignee_id) if view.assignee_id else None
    if agent is None:
        return
    key = _assignment_key(view.ticket_id, agent.id)
    waiting = await repo.find_notification(
        session, key, agent.email.lower(), NotificationKind.ASSIGNMENT_CONSULTANT
    )
    if waiting is None or waiting.state != DeliveryState.PENDING or waiting.attempts != 0:
        return
    mail = await _consultant_mail(
        session, notifier, event, view, agent, contact=contact, organization=organization, sla=sla
    )
    await rewrite_unsent(session, notifier, waiting, mail, due_now=True)


def _consultant_context(
    notifier: Notifier, ticket: TicketRef, consultant: AgentView | None, *, email: str, now: datetime
) -> dict[str, Any]:
    """What a customer mail says about their consultant: who, and where to book time."""
    if consultant is None:
        return {"consultant": None}
    return {
        "consultant": {"id": str(consultant.id), "name": consultant.name, "email": consultant.email},
        "booking_url": booking_url(
            notifier, ticket_id=ticket.id, agent_id=consultant.id, email=email, now=now
        ),
    }


def _assignment_key(ticket_id: UUID, agent_id: object) -> str:
    """The assignment mails' dedupe key: once per ticket and consultant."""
    return f"assignment:{ticket_id}:{agent_id}"


async def on_ticket_updated(session: AsyncSession, notifier: Notifier, event: ev.Event) -> None:
    """The one source of assignment mail: the assignee ticket_api applied (triage's decision,
    or a person's choice). Triage's assignment (the event is ``known_to`` triage: applied as it
    asked) carries its due time and call task to the consultant."""
    p = ev.payload_of(event, ev.TicketUpdatedV1)
    change = p.changed.get("assignee_id")
    assigned = bool(change and change[1])
    if assigned:
        await repo.lock_acknowledgment(session, p.ticket_id)  # the first mails may be decided now
    await project_ticket(session, p)
    view = await repo.get_ticket_view(session, p.ticket_id) if assigned else None
    # The projection's assignee (a later change may be in it already): told once per consultant.
    if (
        view is not None
        and view.assignee_id is not None
        and not await repo.any_notification(session, _assignment_key(p.ticket_id, view.assignee_id))
    ):
        sla = await repo.get_ticket_sla(session, p.ticket_id)
        told = await settle_acknowledgment(session, notifier, view, sla)
        await _tell_assignment(
            session,
            notifier,
            event,
            view,
            contact=p.contact,
            organization=p.organization,
            sla=sla,
            detailed=ev.Service.TRIAGE in event.known_to,
            customer_told=told,
            wait_for_acknowledgment=not told
            and not await repo.any_mail_of_kind(session, p.ticket_id, NotificationKind.ACKNOWLEDGMENT),
        )
    await fan_out_webhooks(session, notifier, event, p.organization.id if p.organization else None)


def moment_or_none(moment: datetime | None, timezone: str) -> str | None:
    return format_instant(moment, timezone) if moment is not None else None


async def on_ticket_triaged(session: AsyncSession, notifier: Notifier, event: ev.Event) -> None:
    """Triage's decision as far as the notifier acts on it: its due times (the acknowledgment's
    promise, the consultant's mail) and, when it found nobody, the team's alert. Whom to tell
    as the consultant is not read here: ticket_api's ``ticket.updated`` says whom it assigned."""
    p = ev.payload_of(event, ev.TicketTriagedV1)
    await repo.lock_acknowledgment(session, p.ticket_id)  # ticket.created may be handled right now
    await repo.upsert_ticket_sla(
        session,
        {
            "ticket_id": p.ticket_id,
            "first_response_due_at": p.first_response_due_at,
            "first_response_target_minutes": p.first_response_target_minutes,
            "first_response_clock_started_at": p.first_response_clock_started_at,
            "calendar_timezone": p.calendar_timezone,
            "closed_days": [{"day": d.day.isoformat(), "name": d.name} for d in p.closed_days],
            "decided_at": event.occurred_at,
            "assignee_id": p.assignee.id if p.assignee else None,
            "call_customer": p.call_customer,
        },
    )
    view = await repo.get_ticket_view(session, p.ticket_id)
    if view is not None:  # else ticket.created is still to come, and reads the decision then
        sla = await repo.get_ticket_sla(session, p.ticket_id)
        assert sla is not None
        await settle_acknowledgment(session, notifier, view, sla)
        await complete_consultant_mail(
            session, notifier, event, view, sla, contact=p.contact, organization=p.organization
        )
    organization_id = p.organization.id if p.organization else None
    if p.assignee is None and notifier.settings.team_address:
        await queue_email(
            session,
            notifier,
            Mail(
                dedupe_key=str(event.id),
                event_type=event.type,
                kind=NotificationKind.UNASSIGNED_ALERT,
                recipient=notifier.settings.team_address,
                recipient_name="team",
                ticket=TicketRef(
                    id=p.ticket_id, number=p.number, subject=p.subject, organization_id=organization_id
                ),
                customer_facing=False,
                context={
                    "priority": p.priority,
                    "reason": p.unassigned_reason or "no consultant matched",
                    "first_response_due_at": moment_or_none(
                        p.first_response_due_at, notifier.settings.office_timezone
                    )
                    or "paused (waiting on the customer)",
                    "customer": {"name": p.contact.name, "email": p.contact.email},
                },
            ),
        )
    await fan_out_webhooks(session, notifier, event, organization_id)
