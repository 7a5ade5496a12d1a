"""Money in results: exact `Decimal` inside, a JSON number on the wire.

Costs are summed as `Decimal` (never float) from token counts and per-million-token prices. Only
when a result is serialised to JSON does a value become a number, so an assistant reads 0.0035
rather than the string "0.0035". A decimal of up to 15 significant digits survives that step
unchanged, which covers any amount below a billion dollars to the nano-dollar.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Annotated

from pydantic import PlainSerializer, WithJsonSchema

_NANO = Decimal("1e-9")


def _to_number(value: Decimal) -> float:
    # From 1e15 up a float cannot show nano-dollars anyway, and quantizing a huge amount to 1e-9 would
    # overflow the decimal context (InvalidOperation) instead of serialising.
    if not value.is_finite() or value.adjusted() >= 15:
        return float(value)
    return float(value.quantize(_NANO, rounding=ROUND_HALF_EVEN))


USD = Annotated[
    Decimal,
    PlainSerializer(_to_number, return_type=float, when_used="json"),
    WithJsonSchema({"type": "number", "description": "US dollars"}),
]
"""An amount of US dollars, exact in Python, a number (rounded to 1e-9) in JSON."""

PerMTok = Annotated[
    Decimal,
    PlainSerializer(float, return_type=float, when_used="json"),
    WithJsonSchema({"type": "number", "description": "US dollars per million tokens"}),
]
"""A price in US dollars per million tokens."""


def pct(part: Decimal, whole: Decimal) -> float | None:
    """`part` as a percentage of `whole`, to two decimals; None when `whole` is zero."""
    if whole == 0:
        return None
    return float((part * 100 / whole).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN))
