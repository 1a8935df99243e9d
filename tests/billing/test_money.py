from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.billing.money import format_amount, invoice_totals, tax_of, time_amount, to_cents


@pytest.mark.parametrize(
    ("amount", "cents"),
    [
        ("0.005", "0.01"),
        ("0.015", "0.02"),
        ("0.125", "0.13"),  # half-even would give 0.12
        ("2.675", "2.68"),  # the float 2.675 is 2.67499…; Decimal is exact
        ("-0.125", "-0.13"),  # half away from zero for credits too
        ("0.124999", "0.12"),
        ("10", "10.00"),
    ],
)
def test_midpoints_round_half_up(amount: str, cents: str) -> None:
    assert to_cents(Decimal(amount)) == Decimal(cents)


def test_money_is_never_a_float() -> None:
    with pytest.raises(TypeError):
        to_cents(0.125)  # type: ignore[arg-type]


def test_time_amounts_are_exact_then_rounded_once() -> None:
    assert time_amount(15, Decimal("150.00")) == Decimal("37.50")
    assert time_amount(1, Decimal("0.30")) == Decimal("0.01")  # 0.005 exactly
    assert time_amount(1, Decimal("100")) == Decimal("1.67")  # 1.6666…
    assert time_amount(-15, Decimal("150.00")) == Decimal("-37.50")


def test_tax_on_an_exact_midpoint() -> None:
    assert tax_of(Decimal("1.50"), Decimal("0.0825")) == Decimal("0.12")  # 0.12375
    assert tax_of(Decimal("10.00"), Decimal("0.0125")) == Decimal("0.13")  # 0.125


def test_totals() -> None:
    totals = invoice_totals([Decimal("37.50"), Decimal("75.00")], Decimal("0.0825"))
    assert totals.subtotal == Decimal("112.50")
    assert totals.tax == Decimal("9.28")  # 9.28125
    assert totals.total == Decimal("121.78")
    assert format_amount(Decimal("1234.5"), "USD") == "USD 1,234.50"


@given(
    minutes=st.integers(min_value=-10_000, max_value=10_000),
    cents=st.integers(min_value=0, max_value=10_000_000),
)
def test_amounts_are_whole_cents_within_half_a_cent_of_exact(minutes: int, cents: int) -> None:
    rate = Decimal(cents) / 100
    amount = time_amount(minutes, rate)
    assert amount == amount.quantize(Decimal("0.01"))
    exact = Decimal(minutes) * rate / 60
    assert abs(amount - exact) <= Decimal("0.005")
    assert time_amount(-minutes, rate) == -amount  # a credit mirrors its charge exactly


@given(st.lists(st.integers(min_value=-(10**9), max_value=10**9), max_size=30))
def test_total_is_subtotal_plus_tax_to_the_cent(line_cents: list[int]) -> None:
    lines = [Decimal(c) / 100 for c in line_cents]
    totals = invoice_totals(lines, Decimal("0.19"))
    assert totals.subtotal == sum(lines, Decimal(0))
    assert totals.total == totals.subtotal + totals.tax
