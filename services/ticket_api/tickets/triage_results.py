"""ticket_api applies what triage decided: ``ticket.triaged`` (priority, assignee) and
``sla.breached`` (escalation: the priority triage raised the ticket to, applied as sent).

Each change is audited with the actor ``service:triage`` and announced as ``ticket.updated``
carrying the changes. A decision applied as triage asked is not sent back to triage (it
holds it already: the event is ``known_to`` triage); one applied otherwise (its consultant is
no longer active here) is, and so is an escalation, which triage recognizes as its own (the
priority it asked for coming back): no decision is made twice and no loop starts.
"""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from services.ticket_api.caller import Caller, jsonable
from services.ticket_api.db import outbox
from services.ticket_api.identity import repository as identity_repo
from services.ticket_api.scheduling import service as scheduling
from services.ticket_api.tickets import repository as repo
from services.ticket_api.tickets import service as ticket_service
from services.ticket_api.tickets.models import Ticket
from shared import events as ev
from shared.clock import utcnow
from shared.consumer import EventHandler
from shared.outbox import Outbox
from shared.principal import Principal, PrincipalKind
from shared.uow import UnitOfWork
from shared.vocabulary import Priority, TicketStatus

log = logging.getLogger(__name__)

TRIAGE_ACTOR = "service:triage"
_TRIAGE = Principal(kind=PrincipalKind.SERVICE, subject_id=UUID(int=0), name="triage")
# Writes events into the outbox in the consumer's transaction; the consumer publishes them
# after commit.
_EVENTS = Outbox(outbox, ev.Service.TICKET_API)


async def _apply(
    session: AsyncSession,
    event: ev.Event,
    ticket: Ticket,
    changes: dict[str, Any],
    *,
    action: str,
    context: dict[str, Any],
    known_to: tuple[ev.Service, ...] = (),
) -> None:
    diff = {
        key: [getattr(ticket, key), value] for key, value in changes.items() if getattr(ticket, key) != value
    }
    for key, (_old, new) in diff.items():
        setattr(ticket, key, new)
    if diff:
        ticket.updated_at = utcnow()
    await session.flush()
    if not diff and action == "triaged":
        return  # the decision was already applied (e.g. a repeated on-demand triage)
    await repo.add_audit(
        session,
        entity_type="ticket",
        entity_id=ticket.id,
        action=action,
        actor=TRIAGE_ACTOR,
        changes=jsonable({**diff, **context}),
        request_id=event.request_id,
    )
    if diff:
        caller = Caller(principal=_TRIAGE, request_id=event.request_id)
        await ticket_service.record_ticket_event(
            UnitOfWork(session, _EVENTS),
            caller,
            ticket,
            ev.EventType.TICKET_UPDATED,
            ev.TicketUpdatedV1,
            known_to=known_to,
            changed=jsonable(diff),
        )


async def apply_ticket_triaged(session: AsyncSession, event: ev.Event) -> None:
    """Set the priority triage decided and its assignee (when it chose one and the agent is
    still active here); an unassigned decision leaves the current assignee alone."""
    decision = ev.payload_of(event, ev.TicketTriagedV1)
    ticket = await repo.get_ticket(session, decision.ticket_id, for_update=True)
    if ticket is None:
        log.warning("ticket.triaged for unknown ticket %s; ignored", decision.ticket_id)
        return
    if decision.calendar is not None:
        # Not a change anyone reads on the ticket: what booking honours (its closed days).
        ticket.sla_calendar = decision.calendar.model_dump(mode="json")
    changes: dict[str, Any] = {"priority": Priority(decision.priority)}
    if decision.assignee is not None:
        agent = await identity_repo.get_agent(session, decision.assignee.id)
        if agent is not None and agent.active:
            changes["assignee_id"] = agent.id
        else:
            log.warning("triage chose agent %s, who is not active here; not assigned", decision.assignee.id)
    applied_as_asked = decision.assignee is None or "assignee_id" in changes
    await _apply(
        session,
        event,
        ticket,
        changes,
        action="triaged",
        context={"decision_id": decision.decision_id, "trigger": decision.trigger},
        known_to=(ev.Service.TRIAGE,) if applied_as_asked else (),
    )
    if decision.call_customer:
        # High priority for a support-agreement customer: the consultant calls them.
        await scheduling.open_call_task(UnitOfWork(session, _EVENTS), ticket.id, ticket.assignee_id)


async def apply_sla_breached(session: AsyncSession, event: ev.Event) -> None:
    """Escalate as triage decided: the priority it sends (``escalated_priority``), when it
    escalates. The breach is audited even when there is nothing to raise."""
    breach = ev.payload_of(event, ev.SlaBreachedV1)
    ticket = await repo.get_ticket(session, breach.ticket_id, for_update=True)
    if ticket is None:
        log.warning("sla.breached for unknown ticket %s; ignored", breach.ticket_id)
        return
    # Triage decides escalation (once per ticket, never past P1) and sends the priority it
    # raised the ticket to; ticket_api applies it as sent, never lowering a priority an agent
    # raised meanwhile. A breach without one (the other target missed too, a P1) raises nothing.
    changes: dict[str, Any] = {}
    raised = Priority(breach.escalated_priority) if breach.escalated_priority is not None else None
    current = Priority(ticket.priority) if ticket.priority is not None else None
    if (
        raised is not None
        and ticket.status != TicketStatus.CLOSED
        and (current is None or raised.level < current.level)
    ):
        changes["priority"] = raised
    await _apply(
        session,
        event,
        ticket,
        changes,
        action="sla_breached",
        context={"target": breach.target, "due_at": breach.due_at.isoformat()},
    )


TRIAGE_HANDLERS: dict[str, EventHandler] = {
    ev.EventType.TICKET_TRIAGED.value: apply_ticket_triaged,
    ev.EventType.SLA_BREACHED.value: apply_sla_breached,
}
