"""The test kit's event builders (tests/fixtures/events.py): one for every registered event
type, each building a valid event of its type, from its producer, that a field overrides."""

from __future__ import annotations

import pytest

from shared import events as ev
from tests.fixtures.events import BUILDERS, PRODUCERS

REGISTERED = sorted({event_type for event_type, _version in ev.PAYLOADS})


def test_every_registered_event_type_has_a_builder() -> None:
    assert set(BUILDERS) == set(REGISTERED), "a new event type needs a builder in tests/fixtures/events.py"


@pytest.mark.parametrize("event_type", REGISTERED, ids=str)
def test_a_builder_makes_a_valid_event_of_its_type(event_type: ev.EventType) -> None:
    model = ev.PAYLOADS[(event_type, 1)]
    event = BUILDERS[event_type]()
    assert (event.type, event.version, event.producer) == (event_type.value, 1, PRODUCERS[event_type])
    assert event.producer not in ev.subscribers(event.type), "a service does not send to itself"
    payload = ev.payload_of(event, model)
    assert ev.Event.model_validate_json(event.model_dump_json()) == event
    assert BUILDERS[event_type]().id != event.id

    # Any field can be set; a misspelt one is refused.
    name, value = next(iter(payload.model_dump().items()))
    again = ev.payload_of(BUILDERS[event_type](**{name: value}), model)
    assert getattr(again, name) == getattr(payload, name)
    with pytest.raises(ValueError):
        BUILDERS[event_type](no_such_field=1)
