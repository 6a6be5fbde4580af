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

# The bound on every amount, price, quantity and rate read at the door (FIX, config files,
# scenarios, the engine's commands): below MAX_AMOUNT and at most AMOUNT_DECIMALS decimals, so
# at most 42 significant digits, and sums of them stay exact in the core's 60. Far above any
# real balance.
MAX_AMOUNT = Decimal(10) ** 24
MAX_AMOUNT_TEXT = f"{MAX_AMOUNT:.0E}"
AMOUNT_DECIMALS = QUANTITY_DECIMALS

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
    """How many decimals ``value`` is written with, ignoring trailing zeros; exact whatever its
    length (read from its digits, not normalised in a context that would round them)."""
    _, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int) or not any(digits):
        return 0
    trailing_zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(0, -(exponent + trailing_zeros))


def amount_problem(value: Decimal) -> str | None:
    """Why ``value`` is beyond what the core's arithmetic carries exactly, or None: it must be
    finite, below MAX_AMOUNT either side of zero, and have at most AMOUNT_DECIMALS decimals."""
    if not value.is_finite():
        return f"must be a finite number, got {value}"
    if value >= MAX_AMOUNT:
        return f"must be below {MAX_AMOUNT_TEXT}, got {value}"
    if value <= -MAX_AMOUNT:
        return f"must be above -{MAX_AMOUNT_TEXT}, got {value}"
    if decimal_places(value) > AMOUNT_DECIMALS:
        return f"must have at most {AMOUNT_DECIMALS} decimals, got {value}"
    return None


def plain(value: Decimal) -> str:
    """``value`` without exponent and without trailing zeros (for wire formats and reports)."""
    text = format(value.normalize(CONTEXT), "f")
    return "0" if text in ("-0", "0") else text


def to_decimal(value: object) -> Decimal:
    """A Decimal within the door's bounds (``amount_problem``) from an int, a string or a
    Decimal; floats are refused as inexact."""
    if isinstance(value, bool) or not isinstance(value, (int, str, Decimal)):
        raise ValueError(f"expected a number, got {value!r}")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a number") from None
    problem = amount_problem(number)
    if problem:
        raise ValueError(problem)
    return number


def smallest_units(amount: Decimal, decimals: int) -> int | None:
    """``amount`` as a whole number of 10**-decimals (a token's integer amount), exactly; None
    if it is off that grid. In the 60-digit context: 28 digits would round a large amount."""
    with localcontext(CONTEXT):
        scaled = amount.scaleb(decimals)
    return int(scaled) if scaled == scaled.to_integral_value() else None

