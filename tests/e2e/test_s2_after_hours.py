"""S2 — after hours.

A ticket logged on Friday at 18:30 is acknowledged at once, says it will be handled the next
business day, and its first response is due on Monday at 13:00 (four business hours from
09:00). A ticket logged on a public holiday counts from the next business day: Northwind, in
Vancouver on British Columbia's holiday calendar, writes on Good Friday afternoon (inside its
office hours on any other Friday)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.e2e.cast import Cast
from tests.e2e.conftest import EmailedTicket, email_in, triaged
from tests.e2e.world import CHICAGO, Scene

pytestmark = pytest.mark.stack

VANCOUVER = ZoneInfo("America/Vancouver")
URGENT = {"Importance": "High"}  # high urgency x one person = P2: four business hours


@pytest.fixture(scope="module")
def friday_evening(friday: Scene, cast: Cast) -> EmailedTicket:
    return email_in(
        friday,
        cast,
        "Tom Baker <tom@acme.test>",
        "Cannot print the payroll",
        "The payroll printout fails with a paper jam error although there is no paper stuck.",
        headers=URGENT,
    )


@pytest.fixture(scope="module")
def good_friday(friday: Scene, cast: Cast) -> EmailedTicket:
    return email_in(
        friday,
        cast,
        "Lee Chan <lee@northwind.test>",
        "Warehouse scanner offline",
        "My barcode scanner stopped connecting to the warehouse system.",
        headers=URGENT,
    )


def sla(scene: Scene, cast: Cast, ticket_id: str) -> dict[str, Any]:
    triaged(scene, cast, ticket_id)
    status: dict[str, Any] = cast.api(scene, "admin").get(f"/api/v1/triage/tickets/{ticket_id}/sla")
    return {timer["target"]: timer for timer in status["timers"]} | {"priority": status["priority"]}


def local(value: str, zone: ZoneInfo) -> str:
    return datetime.fromisoformat(value).astimezone(zone).strftime("%A %Y-%m-%d %H:%M")


def test_a_friday_evening_ticket_is_acknowledged_for_the_next_business_day(
    friday: Scene, cast: Cast, friday_evening: EmailedTicket
) -> None:
    logged = datetime.fromisoformat(friday_evening.ticket["created_at"]).astimezone(CHICAGO)
    assert (logged.strftime("%A %Y-%m-%d %H"), logged.minute >= 30) == ("Friday 2026-04-03 18", True)
    assert friday_evening.seconds_to_acknowledgment < 3.0
    text = friday_evening.acknowledgment.text
    assert "You reached us outside our office hours." in text
    assert "handled on the next business day, Monday, April 6, 2026 at 9:00 AM CDT" in text
    assert "within four business hours, by Monday, April 6, 2026 at 1:00 PM CDT" in text

    timers = sla(friday, cast, friday_evening.id)
    assert timers["priority"] == "P2"
    first_response = timers["first_response"]
    assert first_response["calendar"] == "default" and first_response["target_minutes"] == 240
    assert local(first_response["clock_started_at"], CHICAGO) == "Monday 2026-04-06 09:00"
    assert local(first_response["due_at"], CHICAGO) == "Monday 2026-04-06 13:00"
    assert first_response["elapsed_business_minutes"] == 0


def test_a_ticket_on_a_public_holiday_counts_from_the_next_business_day(
    friday: Scene, cast: Cast, good_friday: EmailedTicket
) -> None:
    logged = datetime.fromisoformat(good_friday.ticket["created_at"]).astimezone(VANCOUVER)
    assert logged.strftime("%A %Y-%m-%d %H") == "Friday 2026-04-03 16", "inside office hours in Vancouver"
    timers = sla(friday, cast, good_friday.id)
    assert timers["priority"] == "P2"
    first_response = timers["first_response"]
    assert first_response["calendar"] == "vancouver"
    # Good Friday is a statutory holiday in British Columbia: nothing counts until Monday 09:00
    # (on an ordinary Friday, half an hour would have counted before 17:00: due at 12:30).
    assert local(first_response["clock_started_at"], VANCOUVER) == "Monday 2026-04-06 09:00"
    assert local(first_response["due_at"], VANCOUVER) == "Monday 2026-04-06 13:00"
    decision = cast.api(friday, "admin").get(f"/api/v1/triage/tickets/{good_friday.id}/decisions")["items"][0]
    assert decision["breakdown"]["sla"]["timezone"] == "America/Vancouver"


def test_the_acknowledgment_on_a_public_holiday_promises_what_the_sla_holds(
    good_friday: EmailedTicket,
) -> None:
    text = good_friday.acknowledgment.text
    flowing = " ".join(text.split())
    assert "within four business hours, by Monday, April 6, 2026 at 1:00 PM PDT" in flowing
    # The holiday is named, and when we are back (Easter Monday is no holiday in British Columbia).
    assert "Our office is closed on Friday, April 3, 2026 (Good Friday)." in flowing
    assert "We are back Monday, April 6, 2026 at 9:00 AM PDT" in flowing
