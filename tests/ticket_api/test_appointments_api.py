"""Appointments: slots from the consultant's week, the signed-SLA gate, booking that cannot
double-book under concurrency, reschedule/cancel with invites' sequence, completion with notes
and time, time off, and call tasks."""

from __future__ import annotations

import asyncio
import json
from datetime import date, datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import select

from services.ticket_api.db import outbox
from services.ticket_api.scheduling import service as scheduling
from services.ticket_api.scheduling.models import Appointment
from services.ticket_api.tickets.models import Ticket
from shared.closed_days import ClosedDays
from shared.uow import UnitOfWork
from tests.ticket_api.conftest import Actors, new_ticket

CHICAGO = ZoneInfo("America/Chicago")


def next_tuesday() -> date:
    """A Tuesday a few days ahead that is no US public holiday (the default calendar's)."""
    today = datetime.now(CHICAGO).date()
    day = today + timedelta(days=3)
    while day.weekday() != 1 or ClosedDays().name_of(day):
        day += timedelta(days=1)
    return day


def at(day: date, hour: int, minute: int = 0) -> str:
    return datetime.combine(day, time(hour, minute), CHICAGO).isoformat()


async def appointment_events(api: Actors) -> list[tuple[str, dict[str, Any]]]:
    async with api.runtime.sessions() as session:
        rows = await session.execute(
            select(outbox.c.type, outbox.c.event)
            .where(outbox.c.type.like("appointment.%"))
            .order_by(outbox.c.created_at)
        )
        return [(row.type, json.loads(row.event)["data"]) for row in rows]


async def assigned_ticket(api: Actors, *, sign: bool = True) -> dict[str, Any]:
    ticket = (await api.client.post("/api/v1/tickets", json=new_ticket(), headers=api.portal_a)).json()
    await api.client.patch(
        f"/api/v1/tickets/{ticket['id']}", json={"assignee_id": str(api.agent_id)}, headers=api.agent
    )
    if sign:
        signed = await api.client.patch(
            f"/api/v1/organizations/{api.org_a['id']}", json={"sla_signed": True}, headers=api.admin
        )
        assert signed.status_code == 200
    return ticket


async def test_no_booking_until_the_sla_is_signed(api: Actors) -> None:
    ticket = await assigned_ticket(api, sign=False)
    body = {"starts_at": at(next_tuesday(), 10)}
    refused = await api.client.post(
        f"/api/v1/tickets/{ticket['id']}/appointments", json=body, headers=api.portal_a
    )
    assert refused.status_code == 409
    assert refused.json()["type"].endswith("sla-not-signed")
    assert "signed SLA" in refused.json()["detail"]

    await api.client.patch(
        f"/api/v1/organizations/{api.org_a['id']}", json={"sla_signed": True}, headers=api.admin
    )
    booked = await api.client.post(
        f"/api/v1/tickets/{ticket['id']}/appointments", json=body, headers=api.portal_a
    )
    assert booked.status_code == 201, booked.text
    assert "notice" not in booked.json()["policy"] or "hours" in booked.json()["policy"]


async def test_slots_follow_the_consultants_week_and_bookings(api: Actors) -> None:
    ticket = await assigned_ticket(api)
    day = next_tuesday()
    path = f"/api/v1/tickets/{ticket['id']}/appointment-slots"
    offered = await api.client.get(path, params={"from": day.isoformat(), "days": 1}, headers=api.portal_a)
    assert offered.status_code == 200, offered.text
    listing = offered.json()
    assert listing["timezone"] == "America/Chicago"
    starts = [s["starts_at"] for s in listing["slots"]]
    assert starts[0] == at(day, 9) and starts[-1] == at(day, 16)
    assert "hours" in listing["policy"]

    await api.client.post(
        f"/api/v1/tickets/{ticket['id']}/appointments", json={"starts_at": at(day, 10)}, headers=api.portal_a
    )
    after = await api.client.get(path, params={"from": day.isoformat(), "days": 1}, headers=api.portal_a)
    remaining = [s["starts_at"] for s in after.json()["slots"]]
    assert (
        at(day, 10) not in remaining and at(day, 9, 30) not in remaining and at(day, 10, 30) not in remaining
    )
    assert at(day, 11) in remaining

    berlin = await api.client.get(
        path, params={"from": day.isoformat(), "days": 1, "timezone": "Europe/Berlin"}, headers=api.portal_a
    )
    assert berlin.json()["slots"][0]["starts_at"].endswith("+01:00")
    bad_zone = await api.client.get(path, params={"timezone": "Mars/Base"}, headers=api.portal_a)
    assert bad_zone.status_code == 422


async def test_concurrent_bookings_of_one_slot_admit_exactly_one(api: Actors) -> None:
    tickets = [await assigned_ticket(api) for _ in range(6)]
    body = {"starts_at": at(next_tuesday(), 14)}
    responses = await asyncio.gather(
        *(
            api.client.post(f"/api/v1/tickets/{t['id']}/appointments", json=body, headers=api.portal_a)
            for t in tickets
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * 5, [r.text for r in responses if r.status_code not in (201, 409)]
    assert len(await appointment_events(api)) == 1


async def test_times_off_the_grid_outside_hours_or_in_the_past_are_refused(api: Actors) -> None:
    ticket = await assigned_ticket(api)
    path = f"/api/v1/tickets/{ticket['id']}/appointments"
    day = next_tuesday()
    for start in (
        at(day, 10, 15),
        at(day, 18),
        at(day - timedelta(days=day.weekday() + 2), 10),
        "2020-01-07T10:00:00-06:00",
    ):
        response = await api.client.post(path, json={"starts_at": start}, headers=api.portal_a)
        assert response.status_code == 409, start
        assert response.json()["type"].endswith("slot-unavailable")
    naive = await api.client.post(path, json={"starts_at": "2030-01-01T10:00:00"}, headers=api.portal_a)
    assert naive.status_code == 422


async def test_reschedule_and_cancel_send_updates_with_a_growing_sequence(api: Actors) -> None:
    ticket = await assigned_ticket(api)
    day = next_tuesday()
    booked = (
        await api.client.post(
            f"/api/v1/tickets/{ticket['id']}/appointments",
            json={"starts_at": at(day, 10)},
            headers=api.portal_a,
        )
    ).json()
    moved = await api.client.post(
        f"/api/v1/appointments/{booked['id']}/reschedule",
        json={"starts_at": at(day, 15)},
        headers=api.portal_a,
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["sequence"] == 1
    # The old time is free again, the new one is taken.
    other = await assigned_ticket(api)
    assert (
        await api.client.post(
            f"/api/v1/tickets/{other['id']}/appointments",
            json={"starts_at": at(day, 10)},
            headers=api.portal_a,
        )
    ).status_code == 201
    cancelled = await api.client.post(
        f"/api/v1/appointments/{booked['id']}/cancel", json={"reason": "fixed"}, headers=api.portal_a
    )
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["late_cancellation"] is False
    events = [
        (kind, data["sequence"], data["status"])
        for kind, data in await appointment_events(api)
        if data["appointment_id"] == booked["id"]
    ]
    assert events == [
        ("appointment.booked", 0, "booked"),
        ("appointment.rescheduled", 1, "booked"),
        ("appointment.cancelled", 2, "cancelled"),
    ]
    data = (await appointment_events(api))[0][1]
    assert data["uid"] == f"{booked['id']}@helpdesk"
    assert data["agent"]["id"] == str(api.agent_id) and data["contact"]["email"] == "jane@acme.test"
    again = await api.client.post(
        f"/api/v1/appointments/{booked['id']}/cancel", json={}, headers=api.portal_a
    )
    assert again.status_code == 409


async def test_changes_inside_the_notice_period(api: Actors) -> None:
    ticket = await assigned_ticket(api)
    booked = (
        await api.client.post(
            f"/api/v1/tickets/{ticket['id']}/appointments",
            json={"starts_at": at(next_tuesday(), 11)},
            headers=api.portal_a,
        )
    ).json()
    api.runtime.settings.appointment_cancel_notice_hours = 24 * 30  # type: ignore[attr-defined]
    late_move = await api.client.post(
        f"/api/v1/appointments/{booked['id']}/reschedule",
        json={"starts_at": at(next_tuesday(), 13)},
        headers=api.portal_a,
    )
    assert late_move.status_code == 409
    assert late_move.json()["type"].endswith("too-late-to-change")
    late_cancel = await api.client.post(
        f"/api/v1/appointments/{booked['id']}/cancel", json={}, headers=api.portal_a
    )
    assert late_cancel.status_code == 200
    assert late_cancel.json()["late_cancellation"] is True


async def test_completing_records_notes_and_time(api: Actors) -> None:
    ticket = await assigned_ticket(api)
    booked = (
        await api.client.post(
            f"/api/v1/tickets/{ticket['id']}/appointments",
            json={"starts_at": at(next_tuesday(), 9)},
            headers=api.portal_a,
        )
    ).json()
    body = {"notes": "Replaced the fuser.", "notes_visibility": "public", "minutes": 75}
    assert (
        await api.client.post(
            f"/api/v1/appointments/{booked['id']}/complete", json=body, headers=api.portal_a
        )
    ).status_code == 403
    early = await api.client.post(
        f"/api/v1/appointments/{booked['id']}/complete", json=body, headers=api.agent
    )
    assert early.status_code == 409, early.text
    assert early.json()["type"].endswith("appointment-not-started")
    assert early.json()["completable_from"] == datetime.fromisoformat(booked["starts_at"]).isoformat()
    await meeting_has_begun(api, UUID(booked["id"]))
    done = await api.client.post(
        f"/api/v1/appointments/{booked['id']}/complete", json=body, headers=api.agent
    )
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "completed"
    messages = (
        await api.client.get(f"/api/v1/tickets/{ticket['id']}/messages", headers=api.portal_a)
    ).json()["items"]
    assert [m["body"] for m in messages] == ["Replaced the fuser."]
    entries = (
        await api.client.get(f"/api/v1/tickets/{ticket['id']}/time-entries", headers=api.agent)
    ).json()["items"]
    assert [(e["minutes"], e["source"]) for e in entries] == [(75, "appointment")]


async def meeting_has_begun(api: Actors, appointment_id: UUID) -> None:
    """Move a booked appointment into the past (the API books only future times)."""
    async with api.runtime.sessions() as session, session.begin():
        appointment = await session.get(Appointment, appointment_id)
        assert appointment is not None
        length = appointment.ends_at - appointment.starts_at
        appointment.starts_at = datetime.now(CHICAGO) - timedelta(minutes=5)
        appointment.ends_at = appointment.starts_at + length


async def closed_on(api: Actors, ticket_id: str, day: date) -> None:
    """What triage's decision tells ticket_api: the ticket's SLA calendar, here closed on ``day``."""
    async with api.runtime.sessions() as session, session.begin():
        ticket = await session.get(Ticket, UUID(ticket_id))
        assert ticket is not None
        ticket.sla_calendar = ClosedDays(closed_dates=frozenset({day})).as_dict()


async def test_no_slots_and_no_booking_on_a_day_the_office_is_closed(api: Actors) -> None:
    ticket = await assigned_ticket(api)
    day = next_tuesday()
    path = f"/api/v1/tickets/{ticket['id']}/appointment-slots"
    params = {"from": day.isoformat(), "days": 1}
    assert (await api.client.get(path, params=params, headers=api.portal_a)).json()["slots"]
    await closed_on(api, ticket["id"], day)
    assert (await api.client.get(path, params=params, headers=api.portal_a)).json()["slots"] == []
    refused = await api.client.post(
        f"/api/v1/tickets/{ticket['id']}/appointments", json={"starts_at": at(day, 10)}, headers=api.portal_a
    )
    assert refused.status_code == 409, refused.text
    assert "public holiday" in refused.json()["detail"]
    # The day after is open as usual.
    following = {"from": (day + timedelta(days=1)).isoformat(), "days": 1}
    assert (await api.client.get(path, params=following, headers=api.portal_a)).json()["slots"]


async def test_future_time_is_not_logged(api: Actors) -> None:
    ticket = (await api.client.post("/api/v1/tickets", json=new_ticket(), headers=api.portal_a)).json()
    ahead = (datetime.now(CHICAGO) + timedelta(hours=2)).isoformat()
    refused = await api.client.post(
        f"/api/v1/tickets/{ticket['id']}/time-entries",
        json={"minutes": 30, "started_at": ahead},
        headers=api.agent,
    )
    assert refused.status_code == 422, refused.text
    assert "started_at" in refused.json()["detail"]


async def test_time_off_removes_slots(api: Actors) -> None:
    ticket = await assigned_ticket(api)
    day = next_tuesday()
    absence = {"starts_at": at(day, 0), "ends_at": at(day + timedelta(days=1), 0), "reason": "Training"}
    assert (
        await api.client.post(f"/api/v1/agents/{api.agent_id}/time-off", json=absence, headers=api.portal_a)
    ).status_code == 403
    added = await api.client.post(f"/api/v1/agents/{api.agent_id}/time-off", json=absence, headers=api.agent)
    assert added.status_code == 201, added.text
    offered = await api.client.get(
        f"/api/v1/tickets/{ticket['id']}/appointment-slots",
        params={"from": day.isoformat(), "days": 1},
        headers=api.portal_a,
    )
    assert offered.json()["slots"] == []
    removed = await api.client.delete(
        f"/api/v1/agents/{api.agent_id}/time-off/{added.json()['id']}", headers=api.agent
    )
    assert removed.status_code == 204


async def test_no_consultant_no_booking(api: Actors) -> None:
    ticket = (await api.client.post("/api/v1/tickets", json=new_ticket(), headers=api.portal_a)).json()
    slots = await api.client.get(f"/api/v1/tickets/{ticket['id']}/appointment-slots", headers=api.portal_a)
    assert slots.status_code == 409
    assert slots.json()["type"].endswith("no-consultant")


async def test_call_tasks_are_listed_and_completed_as_a_logged_call(api: Actors) -> None:
    ticket = await assigned_ticket(api)
    async with api.runtime.sessions() as session:
        uow = UnitOfWork(session, api.runtime.outbox)
        for _ in range(2):  # triage may decide more than once
            await scheduling.open_call_task(uow, ticket_id=UUID(ticket["id"]), agent_id=api.agent_id)
        await uow.commit()
    tasks = (await api.client.get("/api/v1/call-tasks", headers=api.agent)).json()
    assert [t["ticket_id"] for t in tasks] == [ticket["id"]]
    done = await api.client.post(
        f"/api/v1/call-tasks/{tasks[0]['id']}/complete",
        json={"outcome": "Restarted the spooler", "minutes": 15},
        headers=api.agent,
    )
    assert done.status_code == 200
    assert (await api.client.get("/api/v1/call-tasks", headers=api.agent)).json() == []
    entries = (
        await api.client.get(f"/api/v1/tickets/{ticket['id']}/time-entries", headers=api.agent)
    ).json()["items"]
    assert [(e["minutes"], e["source"]) for e in entries] == [(15, "call")]
    notes = (await api.client.get(f"/api/v1/tickets/{ticket['id']}/messages", headers=api.agent)).json()[
        "items"
    ]
    assert notes[0]["visibility"] == "internal" and "spooler" in notes[0]["body"]


async def test_a_consultant_in_another_zone_is_offered_within_the_customers_hours_and_said_so(
    api: Actors,
) -> None:
    ticket = await assigned_ticket(api)
    moved = await api.client.patch(
        f"/api/v1/agents/{api.agent_id}", json={"timezone": "Europe/Berlin"}, headers=api.admin
    )
    assert moved.status_code == 200, moved.text
    day = next_tuesday()
    offered = (
        await api.client.get(
            f"/api/v1/tickets/{ticket['id']}/appointment-slots",
            params={"from": day.isoformat(), "days": 1},
            headers=api.portal_a,
        )
    ).json()
    assert offered["timezone"] == "America/Chicago" and offered["consultant_timezone"] == "Europe/Berlin"
    assert "another timezone (Europe/Berlin)" in offered["note"]
    local = [datetime.fromisoformat(s["starts_at"]).astimezone(CHICAGO) for s in offered["slots"]]
    # Berlin's working day is 02:00-10:00 in Chicago: only what a Chicago customer can take.
    assert local and all(t.hour >= 7 and t.hour + 1 <= 10 for t in local), local
