"""Exact arithmetic: one decimal context for the core, and quantisation at the boundaries."""

from __future__ import annotations

from collections.abc import Callable
from decimal import (
    ROUND_CEILING,
    ROUND_FLOOR,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
    localcontext,
)
from functools import cache, wraps
from typing import ParamSpec, TypeVar

# Wide enough that sums and products of 18-decimal quantities and prices never round; only
# divisions (pro-rata shares, VWAPs) round, and those results are quantised explicitly.
CONTEXT = Context(prec=60, traps=[InvalidOperation, DivisionByZero, Overflow])

ZERO = Decimal(0)
ONE = Decimal(1)

# Index quantities per unit have at most 18 decimals and units 18, so every asset quantity the
# core assigns lies on a 36-decimal grid; pro-rata shares are floored to it, keeping sums exact.
QUANTITY_DECIMALS = 18
SHARE_DECIMALS = 2 * QUANTITY_DECIMALS

_FLOOR = CONTEXT.copy()
_FLOOR.rounding = ROUND_FLOOR

P = ParamSpec("P")
R = TypeVar("R")


def exact(function: Callable[P, R]) -> Callable[P, R]:
    """Run ``function`` in the core's decimal context."""

    @wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with localcontext(CONTEXT):
            return function(*args, **kwargs)

    return wrapper


def divide_down(numerator: Decimal, denominator: Decimal) -> Decimal:
    """A ratio rounded down, so that shares computed from it never add up to more."""
    return _FLOOR.divide(numerator, denominator)


@cache
def quantum(decimals: int) -> Decimal:
    return Decimal(1).scaleb(-decimals)


def floor_to(value: Decimal, step: Decimal) -> Decimal:
    """The largest multiple of ``step`` not above ``value``."""
    if step <= 0:
        return value
    return (value / step).to_integral_value(rounding=ROUND_FLOOR, context=CONTEXT) * step


def ceil_to(value: Decimal, step: Decimal) -> Decimal:
    """The smallest multiple of ``step`` not below ``value``."""
    if step <= 0:
        return value
    return (value / step).to_integral_value(rounding=ROUND_CEILING, context=CONTEXT) * step


def floor_decimals(value: Decimal, decimals: int) -> Decimal:
    return value.quantize(quantum(decimals), rounding=ROUND_FLOOR, context=CONTEXT)


def ceil_decimals(value: Decimal, decimals: int) -> Decimal:
    return value.quantize(quantum(decimals), rounding=ROUND_CEILING, context=CONTEXT)


def round_decimals(value: Decimal, decimals: int) -> Decimal:
    return value.quantize(quantum(decimals), context=CONTEXT)


def decimal_places(value: Decimal) -> int:
    """How many decimals ``value`` is written with, ignoring trailing zeros."""
    exponent = value.normalize(CONTEXT).as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def plain(value: Decimal) -> str:
    """``value`` without exponent and without trailing zeros (for wire formats and reports)."""
    text = format(value.normalize(CONTEXT), "f")
    return "0" if text in ("-0", "0") else text


def to_decimal(value: object) -> Decimal:
    """A finite Decimal from an int, a string or a Decimal; floats are refused as inexact."""
    if isinstance(value, bool) or not isinstance(value, (int, str, Decimal)):
        raise ValueError(f"expected a number, got {value!r}")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a number") from None
    if not number.is_finite():
        raise ValueError(f"must be finite, got {value}")
    return number
