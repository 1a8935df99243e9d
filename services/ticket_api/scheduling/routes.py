"""Appointments (slots, booking, rescheduling, cancelling, completing), agents' time off,
and "call the customer" tasks."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import Response

from services.ticket_api.db import check_timezone
from services.ticket_api.deps import AppSettings, CurrentCaller, Uow, WritingCaller
from services.ticket_api.scheduling import service as scheduling
from services.ticket_api.scheduling.models import CallTaskStatus
from services.ticket_api.scheduling.schemas import (
    AppointmentBook,
    AppointmentCancel,
    AppointmentComplete,
    AppointmentPublic,
    AppointmentReschedule,
    CallTaskComplete,
    CallTaskPublic,
    SlotList,
    TimeOffCreate,
    TimeOffPublic,
)
from shared.problems import Unprocessable, problem_responses

router = APIRouter(tags=["appointments"])


@router.get("/tickets/{ticket_id}/appointment-slots", responses=problem_responses(401, 404, 409, 422))
async def appointment_slots(
    ticket_id: UUID,
    uow: Uow,
    caller: CurrentCaller,
    settings: AppSettings,
    first_day: date | None = Query(None, alias="from", description="first day (default: today)"),
    days: Annotated[int, Query(ge=1, le=62)] = 14,
    duration_minutes: Annotated[int, Query(ge=15, le=480)] = 60,
    timezone: str | None = Query(
        None, description="IANA timezone to show times in (default: the customer's)"
    ),
) -> SlotList:
    """When the ticket's consultant is free, in the customer's timezone, with the consultant's
    external booking page when they have one (customers following the link of our mail get the
    same as a page, ``/ticket-status/{token}/appointment``)."""
    if timezone is not None:
        try:
            check_timezone(timezone)
        except ValueError as error:
            raise Unprocessable(str(error)) from None
    if duration_minutes % settings.appointment_slot_minutes:
        raise Unprocessable(f"duration_minutes must be a multiple of {settings.appointment_slot_minutes}.")
    return await scheduling.offer_slots(
        uow,
        caller,
        settings,
        ticket_id,
        first_day=first_day,
        days=days,
        duration_minutes=duration_minutes,
        timezone=timezone,
    )


@router.post(
    "/tickets/{ticket_id}/appointments", status_code=201, responses=problem_responses(401, 403, 404, 409, 422)
)
async def book_appointment(
    ticket_id: UUID, body: AppointmentBook, uow: Uow, caller: WritingCaller, settings: AppSettings
) -> AppointmentPublic:
    """Book one of the offered slots. Needs a signed SLA on file for the customer's organization.
    Both sides get a calendar invite with the cancellation and reschedule policy."""
    appointment = await scheduling.book(uow, caller, settings, ticket_id, body)
    await uow.commit()
    return scheduling.appointment_public(appointment, settings)


@router.get("/tickets/{ticket_id}/appointments", responses=problem_responses(401, 404, 422))
async def ticket_appointments(
    ticket_id: UUID, uow: Uow, caller: CurrentCaller, settings: AppSettings
) -> list[AppointmentPublic]:
    return [
        scheduling.appointment_public(a, settings)
        for a in await scheduling.appointments_of_ticket(uow, caller, ticket_id)
    ]


@router.get("/appointments/{appointment_id}", responses=problem_responses(401, 404, 422))
async def get_appointment(
    appointment_id: UUID, uow: Uow, caller: CurrentCaller, settings: AppSettings
) -> AppointmentPublic:
    appointment, _ticket = await scheduling.visible_appointment(uow, caller, appointment_id)
    return scheduling.appointment_public(appointment, settings)


@router.post(
    "/appointments/{appointment_id}/reschedule", responses=problem_responses(401, 403, 404, 409, 422)
)
async def reschedule_appointment(
    appointment_id: UUID, body: AppointmentReschedule, uow: Uow, caller: WritingCaller, settings: AppSettings
) -> AppointmentPublic:
    """Move to another offered slot (customers: until the notice period); an updated invite follows."""
    appointment = await scheduling.reschedule(uow, caller, settings, appointment_id, body)
    await uow.commit()
    return scheduling.appointment_public(appointment, settings)


@router.post("/appointments/{appointment_id}/cancel", responses=problem_responses(401, 403, 404, 409, 422))
async def cancel_appointment(
    appointment_id: UUID, body: AppointmentCancel, uow: Uow, caller: WritingCaller, settings: AppSettings
) -> AppointmentPublic:
    """Cancel (a METHOD:CANCEL invite follows). Inside the notice period it is flagged late."""
    appointment = await scheduling.cancel(uow, caller, settings, appointment_id, body)
    await uow.commit()
    return scheduling.appointment_public(appointment, settings)


@router.post("/appointments/{appointment_id}/complete", responses=problem_responses(401, 403, 404, 409, 422))
async def complete_appointment(
    appointment_id: UUID, body: AppointmentComplete, uow: Uow, caller: WritingCaller, settings: AppSettings
) -> AppointmentPublic:
    """Agents: record the meeting's notes on the ticket and log its time (billing charges it)."""
    appointment = await scheduling.complete(uow, caller, settings, appointment_id, body)
    await uow.commit()
    return scheduling.appointment_public(appointment, settings)


@router.post("/agents/{agent_id}/time-off", status_code=201, responses=problem_responses(401, 403, 404, 422))
async def add_time_off(agent_id: UUID, body: TimeOffCreate, uow: Uow, caller: WritingCaller) -> TimeOffPublic:
    """An absence (the agent themself or an admin): no slots are offered inside it."""
    absence = await scheduling.add_time_off(uow, caller, agent_id, body)
    await uow.commit()
    return TimeOffPublic.model_validate(absence, from_attributes=True)


@router.get("/agents/{agent_id}/time-off", responses=problem_responses(401, 403, 422))
async def list_time_off(agent_id: UUID, uow: Uow, caller: CurrentCaller) -> list[TimeOffPublic]:
    return [
        TimeOffPublic.model_validate(a, from_attributes=True)
        for a in await scheduling.time_off_of(uow, caller, agent_id)
    ]


@router.delete(
    "/agents/{agent_id}/time-off/{time_off_id}", status_code=204, responses=problem_responses(401, 403, 404)
)
async def remove_time_off(agent_id: UUID, time_off_id: UUID, uow: Uow, caller: WritingCaller) -> Response:
    await scheduling.remove_time_off(uow, caller, agent_id, time_off_id)
    await uow.commit()
    return Response(status_code=204)


@router.get("/call-tasks", responses=problem_responses(401, 403, 422))
async def list_call_tasks(
    uow: Uow,
    caller: CurrentCaller,
    agent_id: UUID | None = None,
    status: CallTaskStatus | None = CallTaskStatus.OPEN,
) -> list[CallTaskPublic]:
    """ "Call the customer" tasks (agents see their own by default)."""
    tasks = await scheduling.call_tasks(uow, caller, agent_id=agent_id, status=status)
    return [CallTaskPublic.model_validate(t, from_attributes=True) for t in tasks]


@router.post("/call-tasks/{task_id}/complete", responses=problem_responses(401, 403, 404, 409, 422))
async def complete_call_task(
    task_id: UUID, body: CallTaskComplete, uow: Uow, caller: WritingCaller
) -> CallTaskPublic:
    """Record the call's outcome (an internal note) and length (time, counted as first response)."""
    task = await scheduling.complete_call_task(uow, caller, task_id, body)
    await uow.commit()
    return CallTaskPublic.model_validate(task, from_attributes=True)
