"""The solver's tunable parameters, validated once when they are loaded."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from decimal import Decimal

from solver.core.allocation import min_fill_value
from solver.core.money import amount_problem, ceil_decimals, to_decimal


@dataclass(frozen=True, slots=True)
class SolverParams:
    """Batching and completion parameters; amounts are in the collateral asset.

    price_tolerance: a buy's limit is best ask x (1 + price_tolerance).
    fee_reserve: the share of an order's collateral kept back for fees
        (usable = remaining / (1 + fee_reserve)).
    max_order_notional: at most this much of one order's collateral per batch.
    max_batch_notional: at most this much collateral engaged (at limit prices) per batch.
    max_inflight_notional: at most this much notional in asset orders not yet settled.
    max_levels: book levels counted per asset.
    max_orders_per_batch: index orders engaged per batch, oldest first.
    dust_threshold: an order with fills whose remaining collateral is at or below it is
        complete (so is one whose remainder buys less than the smallest fill:
        ``Engine._nothing_left_to_buy``).
    min_order_collateral: orders for less are rejected (so are orders that cannot buy the
        index's smallest tradable quantity alone at today's books).
    mint_retry_delay_ms: wait after the first failed mint; doubles per attempt, at most
        max_mint_retry_delay_ms.
    completion_wait_ms: the longest an order too small to be bought alone waits for other
        orders of its index; then it completes as filled (or expires, without fills) with
        what it has left released (``settlement.bound_waits``).
    settle_margin_ms: a signed order expires this long before its signed deadline, so that
        what was bought for it is settled on-chain before the vault refuses it.

    Bounds: every decimal is below 1E+24 with at most 18 decimals (``money.amount_problem``),
    price_tolerance and fee_reserve are below 1, max_levels is 1 to 1000, max_orders_per_batch
    1 to 100000, and the delays and the wait at most a day.
    """

    price_tolerance: Decimal = Decimal("0.01")
    fee_reserve: Decimal = Decimal("0.002")
    max_order_notional: Decimal = Decimal("100000")
    max_batch_notional: Decimal = Decimal("1000000")
    max_inflight_notional: Decimal = Decimal("2000000")
    max_levels: int = 10
    max_orders_per_batch: int = 100
    dust_threshold: Decimal = Decimal("0.01")
    min_order_collateral: Decimal = Decimal("0")
    mint_retry_delay_ms: int = 5_000
    max_mint_retry_delay_ms: int = 300_000
    completion_wait_ms: int = 60_000
    settle_margin_ms: int = 120_000

    def __post_init__(self) -> None:
        """The bounds hold however the parameters were made (scenario, deployment config or
        code); a ValueError names the parameter and the bound."""
        for f in fields(self):
            value = getattr(self, f.name)
            problem = (_count_problem(value, _COUNTS[f.name]) if f.name in _COUNTS
                       else _decimal_problem(f.name, value))
            if problem:
                raise ValueError(f"{f.name}: {problem}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, object]) -> SolverParams:
        """Build from a config mapping; a ValueError names the key at fault."""
        known = {f.name: f for f in fields(cls)}
        converted: dict[str, object] = {}
        for key, value in values.items():
            if key not in known:
                raise ValueError(f"{key}: unknown parameter (known: {', '.join(known)})")
            converted[key] = _convert(key, value, int if known[key].type == "int" else Decimal)
        return cls(**converted)  # type: ignore[arg-type]


_DAY_MS = 86_400_000

# The whole-number parameters and their highest values: enough for any deployment, and low
# enough that a typo cannot make the planner walk a million levels or wait for years.
_COUNTS = {"max_levels": 1000, "max_orders_per_batch": 100_000,
           "mint_retry_delay_ms": _DAY_MS, "max_mint_retry_delay_ms": _DAY_MS,
           "completion_wait_ms": _DAY_MS, "settle_margin_ms": _DAY_MS}

# Fractions of a price or an amount: 1 or more would mean paying double, or keeping back all.
_RATES = ("price_tolerance", "fee_reserve")

_MAY_BE_ZERO = ("price_tolerance", "fee_reserve", "dust_threshold", "min_order_collateral")


def _count_problem(value: object, high: int) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
        return f"must be a whole number from 1 to {high}, got {value}"
    return None


def _decimal_problem(name: str, value: object) -> str | None:
    if not isinstance(value, Decimal):
        return f"must be a Decimal, got {value!r}"
    problem = amount_problem(value)
    if problem:
        return problem
    if name in _MAY_BE_ZERO:
        if value < 0:
            return f"must not be negative, got {value}"
    elif value <= 0:
        return f"must be greater than zero, got {value}"
    if name in _RATES and value >= 1:
        return f"must be below 1 (a fraction: 0.01 is 1 %), got {value}"
    return None


def _convert(key: str, value: object, kind: type) -> object:
    try:
        number = to_decimal(value)
    except ValueError as error:
        raise ValueError(f"{key}: {error}") from None
    if kind is int:
        if number != number.to_integral_value():
            raise ValueError(f"{key}: must be a whole number")
        return int(number)
    return number


def setting_problems(params: SolverParams, collateral_decimals: Mapping[str, int],
                     fee_rates: Mapping[str, Decimal]) -> list[str]:
    """Settings that can never work together, each naming the key and the least that works:
    ``max_order_notional`` below the smallest fill a collateral allows (an order could never
    be engaged for anything: 0.01 for a 6-decimal collateral, 100 for a 2-decimal one,
    ``allocation.min_fill_value``), and a market's fee rate (``fee_rates`` by symbol) that
    ``fee_reserve`` does not cover (``fee_problem``)."""
    problems = []
    for asset, decimals in sorted(collateral_decimals.items()):
        least = min_fill_value(decimals)
        if params.max_order_notional < least:
            problems.append(
                f"params.max_order_notional: {params.max_order_notional} is below the smallest "
                f"fill of {asset} ({decimals} decimals), {least.normalize():f}: no order "
                "could ever be engaged")
    problems += [p for symbol, rate in sorted(fee_rates.items())
                 if (p := fee_problem(params, rate, f"{symbol}'s fee rate"))]
    return problems


def fee_problem(params: SolverParams, rate: Decimal,
                what: str = "the exchange account's taker fee rate") -> str | None:
    """Why ``fee_reserve`` does not cover a commission ``rate``, if it does not: orders would
    be engaged for more than they can pay, and the house left with what no order paid for. A
    commission taken from the asset bought costs rate / (1 - rate) of the notional, so the
    reserve must be at least that, whichever asset the fee is paid in."""
    needed = ceil_decimals(rate / (1 - rate), 8) if rate < 1 else rate
    if params.fee_reserve >= needed:
        return None
    return (f"params.fee_reserve: {params.fee_reserve} keeps back less than {what} of {rate} "
            f"can charge; use at least {needed.normalize():f}")
