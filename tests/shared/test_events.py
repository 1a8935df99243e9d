from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest
from pydantic import ValidationError

from shared import events as ev
from tests.fixtures.events import agent_created


def _organization() -> ev.OrganizationV1:
    return ev.OrganizationV1(
        organization_id=uuid4(),
        name="Acme",
        support_tier="hourly",
        sla_signed=False,
        email_domains=["acme.test"],
        timezone="America/Chicago",
    )


def test_every_event_type_is_routed_and_has_a_payload_model() -> None:
    for event_type in ev.EventType:
        assert ev.ROUTES[event_type], f"{event_type} reaches nobody"
        assert (event_type, 1) in ev.PAYLOADS


def test_subscribers_of_unknown_types_are_nobody() -> None:
    assert ev.subscribers("ticket.created") == (ev.Service.TRIAGE, ev.Service.NOTIFIER)
    assert ev.subscribers("no.such.event") == ()


def test_an_event_round_trips_through_json() -> None:
    event = ev.new_event(
        ev.EventType.ORGANIZATION_CREATED,
        _organization(),
        producer=ev.Service.TICKET_API,
        subject="organization:1",
        request_id="r-1",
    )
    again = ev.Event.model_validate_json(event.model_dump_json())
    assert again == event
    assert ev.payload_of(again, ev.OrganizationV1) == _organization().model_copy(
        update={"organization_id": again.data["organization_id"]}
    ).model_validate(again.data)
    assert event.occurred_at.tzinfo is UTC
    assert event.occurred_at <= datetime.now(UTC)


def test_an_event_must_carry_the_payload_registered_for_its_type() -> None:
    with pytest.raises(TypeError, match="carries"):
        ev.new_event(ev.EventType.AGENT_CREATED, _organization(), producer=ev.Service.TICKET_API, subject="x")


def test_reading_a_payload_as_the_wrong_model_fails() -> None:
    event = ev.new_event(
        ev.EventType.ORGANIZATION_CREATED, _organization(), producer=ev.Service.TICKET_API, subject="x"
    )
    with pytest.raises(TypeError):
        ev.payload_of(event, ev.AgentV1)


def test_payloads_refuse_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        ev.OrganizationV1.model_validate({**_organization().model_dump(), "surprise": 1})


def test_known_to_is_written_only_when_set_so_older_consumers_read_every_other_event() -> None:
    plain = agent_created()
    assert "known_to" not in plain.model_dump(mode="json")
    assert "known_to" not in plain.model_dump_json()
    echo = plain.model_copy(update={"known_to": (ev.Service.TRIAGE,)})
    assert echo.model_dump(mode="json")["known_to"] == ["triage"]
    assert ev.Event.model_validate_json(echo.model_dump_json()) == echo
    assert ev.recipients(echo) == (ev.Service.NOTIFIER,)
    assert ev.recipients(plain) == (ev.Service.TRIAGE, ev.Service.NOTIFIER)
