"""The solver's tunable parameters, validated once when they are loaded."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from decimal import Decimal

from solver.money import to_decimal


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

    def __post_init__(self) -> None:
        for name in ("max_order_notional", "max_batch_notional", "max_inflight_notional",
                     "max_levels", "max_orders_per_batch", "mint_retry_delay_ms",
                     "max_mint_retry_delay_ms"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be greater than zero")
        for name in ("price_tolerance", "fee_reserve", "dust_threshold", "min_order_collateral"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must not be negative")

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
