from __future__ import annotations

import pytest

from services.ticket_api.tickets.transitions import (
    TicketStatus,
    allowed_targets,
    can_transition,
    status_after_public_message,
)

S = TicketStatus


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (S.NEW, S.OPEN),
        (S.OPEN, S.PENDING_CUSTOMER),
        (S.PENDING_CUSTOMER, S.OPEN),
        (S.OPEN, S.CLOSED),
        (S.PENDING_CUSTOMER, S.CLOSED),
        (S.CLOSED, S.OPEN),
        (S.NEW, S.CLOSED),
    ],
)
def test_lifecycle_moves_allowed(current: TicketStatus, target: TicketStatus) -> None:
    assert can_transition(current, target)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (S.CLOSED, S.PENDING_CUSTOMER),
        (S.CLOSED, S.NEW),
        (S.OPEN, S.NEW),
        (S.PENDING_CUSTOMER, S.NEW),
        (S.OPEN, S.OPEN),
    ],
)
def test_lifecycle_moves_refused(current: TicketStatus, target: TicketStatus) -> None:
    assert not can_transition(current, target)


def test_allowed_targets_are_listed_in_lifecycle_order() -> None:
    assert allowed_targets(S.NEW) == [S.OPEN, S.PENDING_CUSTOMER, S.CLOSED]
    assert allowed_targets(S.CLOSED) == [S.OPEN]


def test_public_messages_move_the_ticket() -> None:
    assert status_after_public_message(S.PENDING_CUSTOMER, from_customer=True) is S.OPEN
    assert status_after_public_message(S.NEW, from_customer=False) is S.OPEN
    assert status_after_public_message(S.NEW, from_customer=True) is S.NEW
    assert status_after_public_message(S.PENDING_CUSTOMER, from_customer=False) is S.PENDING_CUSTOMER
    assert status_after_public_message(S.CLOSED, from_customer=True) is S.CLOSED
