from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.billing.rounding import minimum_adjustment, round_up, ticket_target


@pytest.mark.parametrize(
    ("minutes", "increment", "billed"),
    [
        (0, 15, 0),
        (1, 15, 15),
        (15, 15, 15),
        (16, 15, 30),
        (45, 15, 45),
        (46, 15, 60),
        (7, 1, 7),
        (61, 60, 120),
    ],
)
def test_round_up_to_the_increment(minutes: int, increment: int, billed: int) -> None:
    assert round_up(minutes, increment) == billed


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError):
        round_up(10, 0)
    with pytest.raises(ValueError):
        round_up(-1, 15)


def test_minimum_per_ticket() -> None:
    assert ticket_target([15], 30) == 30
    assert ticket_target([45], 30) == 45
    assert ticket_target([], 30) == 0  # no billable time, no minimum charge
    assert minimum_adjustment([15], 30, already_adjusted=0) == 15
    assert minimum_adjustment([15, 15], 30, already_adjusted=15) == -15  # now met by the entries
    assert minimum_adjustment([0], 30, already_adjusted=15) == -15  # time removed, minimum too


@given(st.integers(min_value=0, max_value=100_000), st.integers(min_value=1, max_value=240))
def test_rounding_is_the_least_whole_increment_not_below(minutes: int, increment: int) -> None:
    billed = round_up(minutes, increment)
    assert billed % increment == 0
    assert minutes <= billed < minutes + increment


@given(
    st.lists(st.integers(min_value=0, max_value=500), max_size=10),
    st.integers(min_value=0, max_value=120),
    st.integers(min_value=-200, max_value=200),
)
def test_adjustment_always_lands_on_the_target(entries: list[int], minimum: int, adjusted: int) -> None:
    assert sum(entries) + adjusted + minimum_adjustment(entries, minimum, adjusted) == ticket_target(
        entries, minimum
    )
