"""The SLA watcher: for each timer whose next alert has come, ``sla.warning`` at the warning
share of its target and ``sla.breached`` at its due time (which escalates the priority once),
each claimed by a unique row before it is recorded, so no alert goes out twice whatever runs
the watcher."""

from __future__ import annotations

from datetime import datetime

from services.triage import repository as repo
from services.triage.business_hours import BusinessCalendar
from services.triage.configuration import calendar_named
from services.triage.context import Context
from services.triage.models import SlaTimer, TicketRecord
from services.triage.priority_matrix import escalation_of
from services.triage.projections import agent_ref, ticket_refs
from services.triage.sla_clock import refresh, timer_of
from shared import events as ev
from shared.ids import new_id
from shared.uow import UnitOfWork


async def watch_timers(uow: UnitOfWork, *, now: datetime, context: Context, limit: int) -> int:
    """One pass of the SLA watcher: for each timer whose next alert has come, send
    ``sla.warning`` (at the warning share) or ``sla.breached`` (at the due time; escalates),
    each at most once per ticket and target. Returns how many timers it looked at."""
    session = uow.session
    rows = await repo.due_timers(session, now=now, limit=limit)
    calendars: dict[str, BusinessCalendar] = {}
    for row, ticket in rows:
        if row.calendar_name not in calendars:
            calendars[row.calendar_name] = await calendar_named(session, row.calendar_name)
        if row.due_at is not None and row.due_at <= now and row.breached_at is None:
            await _alert(uow, ticket, row, "breached", context)
            row.breached_at = now
            row.warning_sent_at = row.warning_sent_at or now  # a warning after the breach says nothing
        elif row.warn_at is not None and row.warn_at <= now and row.warning_sent_at is None:
            await _alert(uow, ticket, row, "warning", context)
            row.warning_sent_at = now
        refresh(row, timer_of(row), calendars[row.calendar_name], context.warning_share)
    await session.flush()
    return len(rows)


async def _alert(uow: UnitOfWork, ticket: TicketRecord, row: SlaTimer, kind: str, context: Context) -> None:
    assert row.due_at is not None
    session = uow.session
    contact, organization = ticket_refs(ticket)
    assignee = await agent_ref(session, ticket.assignee_id)
    common = {
        "ticket_id": ticket.id,
        "number": ticket.number,
        "subject": ticket.subject,
        "target": row.target,
        "target_minutes": row.target_minutes,
        "due_at": row.due_at,
        "priority": ticket.priority,
        "assignee": assignee,
        "contact": contact,
        "organization": organization,
    }
    current = ticket.priority or ticket.expected_priority
    escalated = (
        escalation_of(current, already_escalated=await repo.breach_alerted(session, ticket.id))
        if kind == "breached"
        else None
    )
    # The alert is claimed under the id its event will carry: one alert, one event.
    event_id = new_id()
    claimed = await repo.claim_alert(
        session, ticket_id=ticket.id, target=row.target, kind=kind, due_at=row.due_at, event_id=event_id
    )
    if not claimed:
        return
    subject = f"ticket:{ticket.id}"
    if kind == "warning":
        await uow.emit(
            ev.EventType.SLA_WARNING,
            ev.SlaWarningV1(**common, share=context.warning_share),
            subject=subject,
            event_id=event_id,
        )
    else:
        await uow.emit(
            ev.EventType.SLA_BREACHED,
            ev.SlaBreachedV1(**common, escalated_priority=escalated),
            subject=subject,
            event_id=event_id,
        )
    if kind == "breached" and escalated is not None:
        # ticket_api raises the priority; its ticket.updated coming back is our own change.
        ticket.expected_priority = ticket.priority = escalated
