from __future__ import annotations

from uuid import UUID, uuid4

from hypothesis import given
from hypothesis import strategies as st

from services.billing.charging import (
    OVERAGE,
    BlockBalance,
    EntryState,
    block_notices,
    draw_from_blocks,
    return_charges,
    thresholds_reached,
    ticket_deltas,
)
from services.billing.rounding import round_up


def entry(minutes: int, charged: int = 0, *, changed: bool = True, billable: bool = True) -> EntryState:
    return EntryState(uuid4(), minutes, billable, False, charged, changed)


def test_a_first_close_charges_each_entry_rounded() -> None:
    a, b = entry(10), entry(46)
    deltas = ticket_deltas([a, b], increment=15, minimum=0, minimum_charged=0)
    assert [(d.time_entry_id, d.minutes) for d in deltas] == [(a.time_entry_id, 15), (b.time_entry_id, 60)]


def test_a_second_close_charges_nothing_again() -> None:
    assert ticket_deltas([entry(10, charged=15)], increment=15, minimum=30, minimum_charged=15) == []


def test_corrections_charge_or_credit_the_difference() -> None:
    (up,) = ticket_deltas([entry(50, charged=15)], increment=15, minimum=0, minimum_charged=0)
    assert up.minutes == 45
    (gone,) = ticket_deltas(
        [EntryState(uuid4(), 50, True, True, 60, True)], increment=15, minimum=0, minimum_charged=0
    )
    assert gone.minutes == -60
    (not_billable,) = ticket_deltas(
        [entry(50, 60, billable=False)], increment=15, minimum=0, minimum_charged=0
    )
    assert not_billable.minutes == -60


def test_unchanged_entries_keep_their_charge_when_the_increment_changes() -> None:
    assert ticket_deltas([entry(10, 15, changed=False)], increment=1, minimum=0, minimum_charged=0) == []


def test_minimum_per_ticket_is_a_separate_charge() -> None:
    deltas = ticket_deltas([entry(10)], increment=15, minimum=60, minimum_charged=0)
    assert [(d.time_entry_id is None, d.minutes) for d in deltas] == [(False, 15), (True, 45)]


def test_blocks_are_drawn_oldest_first_then_overage() -> None:
    old, new = BlockBalance(uuid4(), 30), BlockBalance(uuid4(), 600)
    draws, overage = draw_from_blocks(100, [old, new])
    assert draws == [(old.block_id, 30), (new.block_id, 70)] and overage == 0
    draws, overage = draw_from_blocks(700, [old, new])
    assert overage == 70
    assert draw_from_blocks(5, []) == ([], 5)


def test_giving_back_returns_overage_before_block_minutes() -> None:
    block = uuid4()
    assert return_charges(20, [(block, 30), (OVERAGE, 15)]) == [(OVERAGE, -15), (block, -5)]
    assert return_charges(100, [(block, 30)]) == [(block, -30)]  # never more than was charged


def test_thresholds_and_block_notices() -> None:
    assert thresholds_reached(479, 600) == []
    assert thresholds_reached(480, 600) == [80]
    assert thresholds_reached(700, 600) == [80, 100]
    assert block_notices(300, 1200, 20) == []
    assert block_notices(240, 1200, 20) == ["low"]
    assert block_notices(0, 1200, 20) == ["low", "exhausted"]


revisions = st.lists(
    st.tuples(st.integers(min_value=0, max_value=600), st.booleans(), st.booleans()), min_size=1, max_size=8
)


@given(
    st.lists(revisions, min_size=1, max_size=5),
    st.sampled_from([1, 5, 15, 30, 60]),
    st.sampled_from([0, 30, 60]),
    st.data(),
)
def test_closing_after_any_history_bills_exactly_the_rounded_final_time(
    histories: list[list[tuple[int, bool, bool]]], increment: int, minimum: int, data: st.DataObject
) -> None:
    """Whatever corrections happen between closes, the charges add up to what one close of
    the final state would charge: each entry rounded, the ticket at least its minimum."""
    ids = [uuid4() for _ in histories]
    charged: dict[UUID, int] = dict.fromkeys(ids, 0)
    pending: set[UUID] = set()  # entries changed since their last charge (needs_charge)
    minimum_charged = 0
    steps = max(len(history) for history in histories)
    for step in range(steps):
        states = []
        for entry_id, history in zip(ids, histories, strict=True):
            if step < len(history):
                pending.add(entry_id)
            minutes, billable, deleted = history[min(step, len(history) - 1)]
            states.append(
                EntryState(entry_id, minutes, billable, deleted, charged[entry_id], entry_id in pending)
            )
        if data.draw(st.booleans()) or step == steps - 1:
            deltas = ticket_deltas(
                states, increment=increment, minimum=minimum, minimum_charged=minimum_charged
            )
            for delta in deltas:
                if delta.time_entry_id is None:
                    minimum_charged += delta.minutes
                else:
                    charged[delta.time_entry_id] += delta.minutes
            pending.clear()
    final = [history[-1] for history in histories]
    rounded = [round_up(m if b and not d else 0, increment) for m, b, d in final]
    assert [charged[i] for i in ids] == rounded
    expected_total = max(sum(rounded), minimum) if sum(rounded) else 0
    assert sum(charged.values()) + minimum_charged == expected_total
