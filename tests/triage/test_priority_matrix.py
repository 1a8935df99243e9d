from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.triage.priority_matrix import (
    DEFAULT_CELLS,
    Impact,
    ImpactAssessment,
    MatrixError,
    Priority,
    PriorityMatrix,
    Urgency,
    assess_impact,
    infer_impact,
)

MATRIX = PriorityMatrix.default()


@pytest.mark.parametrize(
    ("subject", "description", "impact", "phrase"),
    [
        ("Printer offline", "It stopped this morning. Urgent!", Impact.PERSON, None),
        ("Printer offline", "The office printer stopped answering.", Impact.TEAM, "office printer"),
        ("VPN", "Our team cannot connect since 8am", Impact.TEAM, "our team"),
        ("Mail", "Nobody can send email", Impact.ORGANIZATION, "nobody can"),
        ("EVERYONE is locked out", None, Impact.ORGANIZATION, "everyone"),
        (
            "Checkout broken",
            "Our customers cannot pay in the online shop",
            Impact.MANY_CUSTOMERS,
            "our customers",
        ),
        # The widest impact mentioned wins, whatever the order in the text.
        ("Team can't work", "and everyone else either", Impact.ORGANIZATION, "everyone"),
        # Whole phrases only: 'everyone' is not in 'everyoneness', 'department' is not 'departmental'.
        ("Departmental report", "everyoneness", Impact.PERSON, None),
    ],
)
def test_impact_is_inferred_from_the_words(
    subject: str, description: str | None, impact: Impact, phrase: str | None
) -> None:
    assessment = infer_impact(subject, description)
    assert assessment.impact is impact
    assert assessment.source == "inferred"
    if phrase:
        assert repr(phrase) in assessment.reason


def test_a_stated_impact_is_taken_as_given() -> None:
    assessment = assess_impact("team", "Everyone is down", None)
    assert assessment == ImpactAssessment(Impact.TEAM, "stated", "impact given on the ticket")


def test_the_default_matrix_and_tier_adjustment() -> None:
    person = ImpactAssessment(Impact.PERSON, "inferred", "x")
    hourly = MATRIX.prioritize("high", person, "hourly")
    assert hourly.priority is Priority.P2, "S1: an urgent single-person ticket is promised four hours"
    agreement = MATRIX.prioritize("high", person, "agreement")
    assert (agreement.matrix_priority, agreement.tier_adjustment, agreement.priority) == (
        Priority.P2,
        1,
        Priority.P1,
    )
    assert MATRIX.prioritize("low", person, None).priority is Priority.P4
    assert MATRIX.prioritize("low", person, "unknown-tier").tier_adjustment == 0
    assert agreement.as_dict()["priority"] == "P1"


@given(st.sampled_from(list(Urgency)), st.sampled_from(list(Impact)), st.sampled_from(list(Urgency)))
def test_more_urgency_never_lowers_the_priority(urgency: Urgency, impact: Impact, other: Urgency) -> None:
    order = list(Urgency)
    low, high = sorted((urgency, other), key=order.index)
    assessment = ImpactAssessment(impact, "stated", "")
    assert (
        MATRIX.prioritize(high, assessment, None).priority.level
        <= MATRIX.prioritize(low, assessment, None).priority.level
    )


@given(st.integers(-10, 10), st.sampled_from(list(Priority)))
def test_adjustments_never_go_past_p1_or_p4(levels: int, priority: Priority) -> None:
    assert priority.raised(levels) in set(Priority)
    assert Priority.P1.raised(1) is Priority.P1
    assert Priority.P4.raised(-1) is Priority.P4


def test_a_matrix_round_trips_through_its_configuration() -> None:
    config = MATRIX.to_config()
    again = PriorityMatrix.from_config(config["cells"], config["tier_adjustments"])
    assert again.to_config() == config


def _cells() -> dict[str, dict[str, str]]:
    return {u.value: {i.value: p.value for i, p in row.items()} for u, row in DEFAULT_CELLS.items()}


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda c, t: c["high"].pop("team"), "missing high x team"),
        (lambda c, t: c.pop("low"), "missing low x person"),
        (lambda c, t: c["high"].update(team="P0"), "'P0' is not one of"),
        (lambda c, t: c.update(urgent={}), "unknown urgency 'urgent'"),
        (lambda c, t: c["high"].update(galaxy="P1"), "unknown impact 'galaxy'"),
        (lambda c, t: t.update(agreement=4), "from -3 to 3"),
        (lambda c, t: t.update(agreement=True), "from -3 to 3"),
    ],
)
def test_bad_matrices_are_refused(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    cells, tiers = _cells(), {"agreement": 1}
    mutate(cells, tiers)
    with pytest.raises(MatrixError, match=message):
        PriorityMatrix.from_config(cells, tiers)
