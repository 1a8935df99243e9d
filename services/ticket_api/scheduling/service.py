"""Appointments and call tasks: offering a consultant's free slots, booking, rescheduling,
cancelling and completing appointments, and the "call the customer" tasks from triage.

Double booking is impossible by construction: an appointment reserves one row per grid slot
in ``appointment_slot`` (primary key agent × slot), so of two concurrent bookings of the same
time the database lets exactly one commit.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError

from services.ticket_api.caller import Caller, audit, require_admin, require_staff
from services.ticket_api.errors import AgentNotFound
from services.ticket_api.identity import repository as identity_repo
from services.ticket_api.identity.models import Agent
from services.ticket_api.organizations import repository as organization_repo
from services.ticket_api.organizations.models import Organization
from services.ticket_api.scheduling import repository as repo
from services.ticket_api.scheduling.availability import (
    Interval,
    bookable_slots,
    closed_intervals,
    grid_slots,
    is_bookable,
    within_local_hours,
)
from services.ticket_api.scheduling.models import (
    AgentTimeOff,
    Appointment,
    AppointmentSlot,
    AppointmentStatus,
    CallTask,
    CallTaskStatus,
)
from services.ticket_api.scheduling.schemas import (
    AppointmentBook,
    AppointmentCancel,
    AppointmentComplete,
    AppointmentPublic,
    AppointmentReschedule,
    CallTaskComplete,
    SlotList,
    SlotOffer,
    TimeOffCreate,
)
from services.ticket_api.settings import Settings
from services.ticket_api.tickets import service as ticket_service
from services.ticket_api.tickets.models import Ticket, TimeEntrySource, Visibility
from services.ticket_api.tickets.schemas import MessageCreate, TimeEntryCreate
from services.ticket_api.tickets.views import ticket_number
from shared import events as ev
from shared.clock import utcnow
from shared.closed_days import ClosedDays
from shared.problems import Conflict, NotFound, Unprocessable
from shared.time_format import format_instant
from shared.uow import UnitOfWork
from shared.vocabulary import TicketStatus


class AppointmentNotFound(NotFound):
    slug, title = "appointment-not-found", "Appointment not found"


class SlaNotSigned(Conflict):
    slug, title = "sla-not-signed", "A signed SLA is needed before booking"


class SlotUnavailable(Conflict):
    slug, title = "slot-unavailable", "That time cannot be booked"


class NoConsultant(Conflict):
    slug, title = "no-consultant", "No consultant is assigned yet"


class TooLate(Conflict):
    slug, title = "too-late-to-change", "Too late to change this appointment"


class NotStartedYet(Conflict):
    slug, title = "appointment-not-started", "This appointment has not started yet"


class CallTaskNotFound(NotFound):
    slug, title = "call-task-not-found", "Call task not found"


# --- reading -----------------------------------------------------------------------------------


def closed_days_of(ticket: Ticket) -> ClosedDays:
    """The closed days of the calendar the ticket's SLA counts in (triage's latest decision;
    the default calendar until triaged)."""
    return ClosedDays.from_dict(ticket.sla_calendar)


async def _busy(
    uow: UnitOfWork,
    agent_id: UUID,
    window: Interval,
    *,
    closed: ClosedDays,
    ignore: UUID | None = None,
) -> list[Interval]:
    """When the consultant cannot meet: booked appointments, time off, and the office's
    closed days (public holidays)."""
    appointments = await uow.session.scalars(
        select(Appointment).where(
            Appointment.agent_id == agent_id,
            Appointment.status == AppointmentStatus.BOOKED,
            Appointment.starts_at < window.end,
            Appointment.ends_at > window.start,
        )
    )
    absences = await uow.session.scalars(
        select(AgentTimeOff).where(
            AgentTimeOff.agent_id == agent_id,
            AgentTimeOff.starts_at < window.end,
            AgentTimeOff.ends_at > window.start,
        )
    )
    busy = [Interval(a.starts_at, a.ends_at) for a in appointments if a.id != ignore]
    return busy + [Interval(t.starts_at, t.ends_at) for t in absences] + closed_intervals(closed, window)


async def _consultant(uow: UnitOfWork, caller: Caller, ticket: Ticket, requested: UUID | None) -> Agent:
    if requested is not None and not caller.principal.is_staff:
        raise Unprocessable("Only agents choose the consultant; customers book with the ticket's consultant.")
    agent_id = requested or ticket.assignee_id
    if agent_id is None:
        raise NoConsultant(
            "This ticket has no consultant yet; booking opens once one is assigned (you will get an email)."
        )
    agent = await identity_repo.get_agent(uow.session, agent_id)
    if agent is None or not agent.active:
        raise AgentNotFound(f"No active consultant {agent_id}.")
    return agent


def why_not_bookable(organization: Organization | None) -> str | None:
    """Why a customer of this organization cannot book yet (no signed SLA), or ``None``."""
    if organization is None:
        return (
            "Appointments are for customers with a support agreement on file; this ticket belongs to no "
            "organization. Ask your consultant by replying to the ticket."
        )
    if organization.sla_signed_at is None:
        return (
            f"{organization.name} has no signed SLA on file yet. Reply to your acknowledgment email with the "
            "signed SLA (PDF) attached; once an agent confirms it, you can book."
        )
    return None


def _require_signed_sla(organization: Organization | None) -> None:
    if reason := why_not_bookable(organization):
        extra = {"organization_id": str(organization.id)} if organization is not None else {}
        raise SlaNotSigned(reason, **extra)


def _earliest(settings: Settings) -> datetime:
    return utcnow() + timedelta(minutes=settings.appointment_min_lead_minutes)


async def offer_slots(
    uow: UnitOfWork,
    caller: Caller,
    settings: Settings,
    ticket_id: UUID,
    *,
    first_day: date | None,
    days: int,
    duration_minutes: int,
    timezone: str | None,
) -> SlotList:
    """The consultant's free starts for this ticket, shown in the customer's timezone."""
    ticket = await ticket_service.visible_ticket(uow, caller, ticket_id)
    agent = await _consultant(uow, caller, ticket, None)
    organization = (
        await organization_repo.get_organization(uow.session, ticket.organization_id)
        if ticket.organization_id
        else None
    )
    zone_name = timezone or (organization.timezone if organization else agent.timezone)
    zone = ZoneInfo(zone_name)
    start_day = first_day or utcnow().astimezone(zone).date()
    window = Interval(
        datetime.combine(start_day, time(0, 0), zone),
        datetime.combine(start_day + timedelta(days=days), time(0, 0), zone),
    )
    horizon = utcnow() + timedelta(days=settings.appointment_horizon_days)
    window = Interval(window.start, min(window.end, horizon))
    starts = (
        bookable_slots(
            weekly_hours=agent.working_hours,
            timezone=agent.timezone,
            window=window,
            busy=await _busy(uow, agent.id, window, closed=closed_days_of(ticket)),
            slot_minutes=settings.appointment_slot_minutes,
            duration_minutes=duration_minutes,
            earliest=_earliest(settings),
        )
        if window.start < window.end
        else []
    )
    length = timedelta(minutes=duration_minutes)
    opens, closes = settings.appointment_customer_hours
    # Only times the customer can reasonably take, in their own timezone.
    starts = [s for s in starts if within_local_hours(s, s + length, zone_name, opens, closes)]
    return SlotList(
        agent_id=agent.id,
        agent_name=agent.name,
        timezone=zone_name,
        duration_minutes=duration_minutes,
        slots=[
            SlotOffer(starts_at=s.astimezone(zone), ends_at=(s + length).astimezone(zone)) for s in starts
        ],
        external_scheduling_url=agent.scheduling_url,
        policy=settings.appointment_policy_text,
        not_bookable_reason=why_not_bookable(organization),
        consultant_timezone=agent.timezone,
        note=another_zone_note(agent.name, agent.timezone, zone_name, opens, closes),
    )


def another_zone_note(
    agent_name: str, agent_zone: str, shown_zone: str, opens: time, closes: time
) -> str | None:
    """Said plainly when the consultant works in another timezone than the times shown."""
    if agent_zone == shown_zone:
        return None
    return (
        f"{agent_name} works in another timezone ({agent_zone}). The times are shown in yours "
        f"({shown_zone}), between {opens:%H:%M} and {closes:%H:%M}."
    )


async def visible_appointment(
    uow: UnitOfWork, caller: Caller, appointment_id: UUID
) -> tuple[Appointment, Ticket]:
    appointment = await uow.session.get(Appointment, appointment_id, with_for_update=True)
    if appointment is None:
        raise AppointmentNotFound(f"No appointment {appointment_id}.")
    try:
        ticket = await ticket_service.visible_ticket(uow, caller, appointment.ticket_id)
    except NotFound:
        raise AppointmentNotFound(f"No appointment {appointment_id}.") from None
    return appointment, ticket


async def appointments_of_ticket(uow: UnitOfWork, caller: Caller, ticket_id: UUID) -> list[Appointment]:
    ticket = await ticket_service.visible_ticket(uow, caller, ticket_id)
    return await repo.appointments_of(uow.session, ticket.id)


def appointment_public(appointment: Appointment, settings: Settings) -> AppointmentPublic:
    fields = {name: getattr(appointment, name) for name in AppointmentPublic.model_fields if name != "policy"}
    return AppointmentPublic(**fields, policy=settings.appointment_policy_text)


# --- changing ------------------------------------------------------------------------------


async def _reserve(uow: UnitOfWork, appointment: Appointment, settings: Settings) -> None:
    """Hold the appointment's grid slots; a concurrent booking of any of them loses here."""
    minutes = int((appointment.ends_at - appointment.starts_at) / timedelta(minutes=1))
    rows = [
        {"agent_id": appointment.agent_id, "slot_starts_at": slot, "appointment_id": appointment.id}
        for slot in grid_slots(appointment.starts_at, minutes, settings.appointment_slot_minutes)
    ]
    try:
        async with uow.session.begin_nested():
            await uow.session.execute(insert(AppointmentSlot), rows)
    except IntegrityError:
        raise SlotUnavailable("Someone else just booked that time; pick another slot.") from None


async def _release(uow: UnitOfWork, appointment: Appointment) -> None:
    await uow.session.execute(delete(AppointmentSlot).where(AppointmentSlot.appointment_id == appointment.id))


async def _check_start(
    uow: UnitOfWork,
    settings: Settings,
    agent: Agent,
    start: datetime,
    minutes: int,
    *,
    closed: ClosedDays,
    ignore: UUID | None = None,
) -> None:
    if minutes % settings.appointment_slot_minutes:
        raise Unprocessable(f"Appointments last a multiple of {settings.appointment_slot_minutes} minutes.")
    if start > utcnow() + timedelta(days=settings.appointment_horizon_days):
        raise SlotUnavailable(f"Bookings open {settings.appointment_horizon_days} days ahead at most.")
    window = Interval(start, start + timedelta(minutes=minutes))
    bookable = is_bookable(
        start,
        weekly_hours=agent.working_hours,
        timezone=agent.timezone,
        busy=await _busy(uow, agent.id, window, closed=closed, ignore=ignore),
        slot_minutes=settings.appointment_slot_minutes,
        duration_minutes=minutes,
        earliest=_earliest(settings),
    )
    if not bookable:
        raise SlotUnavailable(
            "That time is not among the consultant's free slots (outside working hours, a public holiday "
            "or time off, taken, too soon or off the booking grid); choose one from the ticket's "
            "appointment-slots."
        )


async def _record(
    uow: UnitOfWork,
    caller: Caller,
    settings: Settings,
    appointment: Appointment,
    ticket: Ticket,
    kind: ev.EventType,
) -> None:
    contact, organization = await ticket_service.snapshot_refs(uow, ticket)
    agent = await identity_repo.get_agent(uow.session, appointment.agent_id)
    assert agent is not None
    payload = ev.AppointmentV1(
        appointment_id=appointment.id,
        uid=f"{appointment.id}@helpdesk",
        sequence=appointment.sequence,
        status=appointment.status,
        ticket_id=ticket.id,
        number=ticket_number(ticket.number),
        subject=ticket.subject,
        starts_at=appointment.starts_at,
        ends_at=appointment.ends_at,
        timezone=organization.timezone if organization else agent.timezone,
        agent=ev.AgentRef(id=agent.id, name=agent.name, email=agent.email),
        contact=contact,
        organization=organization,
        policy=settings.appointment_policy_text,
        late_cancellation=appointment.late_cancellation,
        cancel_reason=appointment.cancel_reason,
    )
    await uow.emit(kind, payload, subject=f"appointment:{appointment.id}", request_id=caller.request_id)
    await audit(
        uow,
        caller,
        "ticket",
        ticket.id,
        kind.value.replace(".", "_"),
        {
            "appointment_id": appointment.id,
            "starts_at": appointment.starts_at,
            "sequence": appointment.sequence,
        },
    )


async def book(
    uow: UnitOfWork, caller: Caller, settings: Settings, ticket_id: UUID, data: AppointmentBook
) -> Appointment:
    ticket = await ticket_service.visible_ticket(uow, caller, ticket_id, for_update=True)
    if ticket.status == TicketStatus.CLOSED:
        raise Conflict("This ticket is closed; open a new one to book time.")
    organization = (
        await organization_repo.get_organization(uow.session, ticket.organization_id)
        if ticket.organization_id
        else None
    )
    _require_signed_sla(organization)
    agent = await _consultant(uow, caller, ticket, data.agent_id)
    start = data.starts_at.astimezone(ZoneInfo("UTC"))
    await _check_start(uow, settings, agent, start, data.duration_minutes, closed=closed_days_of(ticket))
    appointment = Appointment(
        ticket_id=ticket.id,
        agent_id=agent.id,
        contact_id=ticket.contact_id,
        organization_id=ticket.organization_id,
        starts_at=start,
        ends_at=start + timedelta(minutes=data.duration_minutes),
        booked_by=caller.principal.audit_ref,
    )
    uow.session.add(appointment)
    await uow.session.flush()
    await _reserve(uow, appointment, settings)
    await _record(uow, caller, settings, appointment, ticket, ev.EventType.APPOINTMENT_BOOKED)
    return appointment


def _within_notice(appointment: Appointment, settings: Settings) -> bool:
    return utcnow() <= appointment.starts_at - timedelta(hours=settings.appointment_cancel_notice_hours)


def _require_booked(appointment: Appointment) -> None:
    if appointment.status != AppointmentStatus.BOOKED:
        raise Conflict(f"This appointment is {appointment.status}; only booked ones can change.")


async def reschedule(
    uow: UnitOfWork, caller: Caller, settings: Settings, appointment_id: UUID, data: AppointmentReschedule
) -> Appointment:
    appointment, ticket = await visible_appointment(uow, caller, appointment_id)
    _require_booked(appointment)
    if not caller.principal.is_staff and not _within_notice(appointment, settings):
        raise TooLate(
            f"Appointments can be moved until {settings.appointment_cancel_notice_hours} hours before "
            "they start; please reply to the ticket or call us."
        )
    agent = await identity_repo.get_agent(uow.session, appointment.agent_id)
    assert agent is not None
    minutes = data.duration_minutes or int(
        (appointment.ends_at - appointment.starts_at) / timedelta(minutes=1)
    )
    start = data.starts_at.astimezone(ZoneInfo("UTC"))
    await _check_start(
        uow, settings, agent, start, minutes, closed=closed_days_of(ticket), ignore=appointment.id
    )
    await _release(uow, appointment)
    appointment.starts_at = start
    appointment.ends_at = start + timedelta(minutes=minutes)
    appointment.sequence += 1
    appointment.updated_at = utcnow()
    await uow.session.flush()
    await _reserve(uow, appointment, settings)
    await _record(uow, caller, settings, appointment, ticket, ev.EventType.APPOINTMENT_RESCHEDULED)
    return appointment


async def cancel(
    uow: UnitOfWork, caller: Caller, settings: Settings, appointment_id: UUID, data: AppointmentCancel
) -> Appointment:
    """Cancel; after the notice period the cancellation is flagged late (it may be billed)."""
    appointment, ticket = await visible_appointment(uow, caller, appointment_id)
    _require_booked(appointment)
    await _release(uow, appointment)
    now = utcnow()
    appointment.status = AppointmentStatus.CANCELLED
    appointment.cancelled_at = now
    appointment.cancel_reason = data.reason
    appointment.late_cancellation = not caller.principal.is_staff and not _within_notice(
        appointment, settings
    )
    appointment.sequence += 1
    appointment.updated_at = now
    await uow.session.flush()
    await _record(uow, caller, settings, appointment, ticket, ev.EventType.APPOINTMENT_CANCELLED)
    return appointment


async def complete(
    uow: UnitOfWork, caller: Caller, settings: Settings, appointment_id: UUID, data: AppointmentComplete
) -> Appointment:
    """After the meeting: the consultant's notes go on the ticket and the time is logged."""
    require_staff(caller)
    appointment, ticket = await visible_appointment(uow, caller, appointment_id)
    _require_booked(appointment)
    if utcnow() < appointment.starts_at:
        # Its time would be a future-dated line on an invoice.
        raise NotStartedYet(
            f"This appointment starts at {appointment.starts_at.isoformat()}; it can be completed (and its "
            "time logged) from then on.",
            completable_from=appointment.starts_at.isoformat(),
        )
    appointment.status = AppointmentStatus.COMPLETED
    appointment.updated_at = utcnow()
    await uow.session.flush()
    await ticket_service.post_message(
        uow, caller, ticket.id, MessageCreate(body=data.notes, visibility=data.notes_visibility)
    )
    minutes = data.minutes or int((appointment.ends_at - appointment.starts_at) / timedelta(minutes=1))
    organization = (
        await organization_repo.get_organization(uow.session, ticket.organization_id)
        if ticket.organization_id
        else None
    )
    await ticket_service.log_time(
        uow,
        caller,
        ticket.id,
        TimeEntryCreate(
            minutes=minutes,
            started_at=appointment.starts_at,
            billable=data.billable,
            # The customer reads this on their invoice: their own local time.
            description="Appointment on "
            + format_instant(appointment.starts_at, organization.timezone if organization else None),
            agent_id=appointment.agent_id,
            source=TimeEntrySource.APPOINTMENT,
        ),
    )
    return appointment


# --- time off ---------------------------------------------------------------------------------


async def add_time_off(uow: UnitOfWork, caller: Caller, agent_id: UUID, data: TimeOffCreate) -> AgentTimeOff:
    if caller.principal.agent_id != agent_id:
        require_admin(caller)
    if data.ends_at <= data.starts_at:
        raise Unprocessable("Time off must end after it starts.")
    if await identity_repo.get_agent(uow.session, agent_id) is None:
        raise AgentNotFound(f"No agent {agent_id}.")
    absence = AgentTimeOff(
        agent_id=agent_id, starts_at=data.starts_at, ends_at=data.ends_at, reason=data.reason
    )
    uow.session.add(absence)
    await uow.session.flush()
    return absence


async def time_off_of(uow: UnitOfWork, caller: Caller, agent_id: UUID) -> list[AgentTimeOff]:
    require_staff(caller)
    rows = await uow.session.scalars(
        select(AgentTimeOff)
        .where(AgentTimeOff.agent_id == agent_id, AgentTimeOff.ends_at > utcnow())
        .order_by(AgentTimeOff.starts_at)
    )
    return list(rows)


async def remove_time_off(uow: UnitOfWork, caller: Caller, agent_id: UUID, time_off_id: UUID) -> None:
    if caller.principal.agent_id != agent_id:
        require_admin(caller)
    absence = await uow.session.get(AgentTimeOff, time_off_id)
    if absence is None or absence.agent_id != agent_id:
        raise NotFound(f"No time off {time_off_id} for agent {agent_id}.")
    await uow.session.delete(absence)
    await uow.session.flush()


# --- call tasks -------------------------------------------------------------------------------


async def open_call_task(uow: UnitOfWork, ticket_id: UUID, agent_id: UUID | None) -> None:
    """One open "call the customer" task per ticket (triage may decide more than once)."""
    existing = await uow.session.scalar(select(CallTask).where(CallTask.ticket_id == ticket_id))
    if existing is None:
        uow.session.add(CallTask(ticket_id=ticket_id, agent_id=agent_id))
    elif existing.status == CallTaskStatus.OPEN and existing.agent_id != agent_id and agent_id is not None:
        existing.agent_id = agent_id
    await uow.session.flush()


async def call_tasks(
    uow: UnitOfWork, caller: Caller, *, agent_id: UUID | None, status: CallTaskStatus | None
) -> list[CallTask]:
    require_staff(caller)
    query = select(CallTask).order_by(CallTask.created_at)
    owner = agent_id or (caller.principal.agent_id if not caller.principal.is_admin else None)
    if owner is not None:
        query = query.where(CallTask.agent_id == owner)
    if status is not None:
        query = query.where(CallTask.status == status)
    return list(await uow.session.scalars(query.limit(500)))


async def complete_call_task(
    uow: UnitOfWork, caller: Caller, task_id: UUID, data: CallTaskComplete
) -> CallTask:
    """Record the call: its outcome as an internal note and its length as time (source "call",
    which also counts as the ticket's first response)."""
    require_staff(caller)
    task = await uow.session.get(CallTask, task_id, with_for_update=True)
    if task is None:
        raise CallTaskNotFound(f"No call task {task_id}.")
    if task.status == CallTaskStatus.DONE:
        raise Conflict("This call is already recorded.")
    task.status = CallTaskStatus.DONE
    task.outcome = data.outcome
    task.completed_at = utcnow()
    await uow.session.flush()
    await ticket_service.post_message(
        uow,
        caller,
        task.ticket_id,
        MessageCreate(body=f"Call: {data.outcome}", visibility=Visibility.INTERNAL),
    )
    await ticket_service.log_time(
        uow,
        caller,
        task.ticket_id,
        TimeEntryCreate(
            minutes=data.minutes,
            billable=data.billable,
            description="Call with the customer",
            agent_id=caller.principal.agent_id or task.agent_id,
            source=TimeEntrySource.CALL,
            started_at=utcnow() - timedelta(minutes=data.minutes),
        ),
    )
    return task
