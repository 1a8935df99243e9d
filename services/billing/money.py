"""Money: ``Decimal`` end to end, rounded half-up to the cent in exactly one place.

Python's default decimal context rounds half-even (0.125 → 0.12); invoices round half-up
(0.125 → 0.13). Every amount that leaves this module as money went through :func:`to_cents`:

* an invoice line's amount is ``to_cents(minutes × hourly rate ÷ 60)``;
* the tax of an invoice is ``to_cents(subtotal × tax rate)``;
* subtotal and total are sums of amounts already in cents, so they need no rounding.

Intermediate products are computed exactly (a local context with ample precision), so the
only rounding an amount ever sees is the one in :func:`to_cents`. Stored, an amount is whole
cents (:func:`cents`, :func:`from_cents`) and a tax rate parts per million (:func:`ppm`).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext
from typing import NamedTuple

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
MINUTES_PER_HOUR = 60
# Enough digits that minutes × rate ÷ 60 is exact to far below a cent for any sane amount.
_EXACT = Context(prec=50)


def to_cents(amount: Decimal) -> Decimal:
    """Round ``amount`` half-up to the cent: the one rounding point for money."""
    if not isinstance(amount, Decimal):
        raise TypeError(f"money is Decimal, not {type(amount).__name__}")
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def time_amount(minutes: int, rate_per_hour: Decimal) -> Decimal:
    """What ``minutes`` of work cost at ``rate_per_hour``, in cents (negative minutes credit)."""
    with localcontext(_EXACT):
        exact = Decimal(minutes) * rate_per_hour / MINUTES_PER_HOUR
    return to_cents(exact)


def tax_of(subtotal: Decimal, tax_rate: Decimal) -> Decimal:
    """Tax on ``subtotal`` at ``tax_rate`` (0.0825 for 8.25 %), in cents."""
    with localcontext(_EXACT):
        exact = subtotal * tax_rate
    return to_cents(exact)


class Totals(NamedTuple):
    subtotal: Decimal
    tax: Decimal
    total: Decimal


def invoice_totals(line_amounts: Iterable[Decimal], tax_rate: Decimal) -> Totals:
    """Subtotal (sum of the lines, already in cents), tax on it, and the total."""
    subtotal = sum(line_amounts, ZERO)
    tax = tax_of(subtotal, tax_rate)
    return Totals(subtotal, tax, subtotal + tax)


def cents(amount: Decimal) -> int:
    """A Decimal amount in whole cents (it must already be rounded to the cent)."""
    value = amount * 100
    if value != value.to_integral_value():
        raise ValueError(f"{amount} is not a whole number of cents")
    return int(value)


def from_cents(value: int) -> Decimal:
    """Whole cents as a Decimal with two places (150.00, never 150)."""
    return Decimal(value).scaleb(-2)


PPM = Decimal(1_000_000)


def ppm(rate: Decimal) -> int:
    value = rate * PPM
    if value != value.to_integral_value():
        raise ValueError(f"{rate} has more than six decimal places")
    return int(value)


def from_ppm(value: int) -> Decimal:
    return (Decimal(value) / PPM).normalize() if value else Decimal(0)


def format_amount(amount: Decimal, currency: str) -> str:
    """``USD 1,234.50`` — the ISO code, never a symbol that a font or reader might not know."""
    return f"{currency} {amount:,.2f}"
