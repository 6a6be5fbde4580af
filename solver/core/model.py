"""Index definitions and the collateral assets they are bought with."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from solver.core.money import (
    AMOUNT_DECIMALS,
    QUANTITY_DECIMALS,
    ZERO,
    amount_problem,
    exact,
    round_decimals,
)

MAX_INDEX_DECIMALS = QUANTITY_DECIMALS


class IndexDefinitionError(ValueError):
    """A definition that cannot describe an index; the message names the field at fault."""


def _whole_in(value: object, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


@dataclass(frozen=True, slots=True)
class Constituent:
    """``quantity`` of ``asset`` (traded as exchange ``symbol``) in one index unit."""

    asset: str
    symbol: str
    quantity: Decimal


@dataclass(frozen=True, slots=True)
class Collateral:
    """A stable-coin users deposit; amounts in it are exact to ``decimals``."""

    asset: str
    decimals: int = 6

    def __post_init__(self) -> None:
        # Amounts at the door have at most 18 decimals, and a cost near MAX_AMOUNT rounded to
        # more decimals than that would need more digits than the core's context carries.
        if not _whole_in(self.decimals, 0, AMOUNT_DECIMALS):
            raise ValueError(f"collateral {self.asset}: decimals must be a whole number from 0 "
                             f"to {AMOUNT_DECIMALS}, got {self.decimals}")


@dataclass(frozen=True, slots=True)
class Index:
    symbol: str
    collateral: str
    constituents: tuple[Constituent, ...]
    decimals: int = 18

    def __post_init__(self) -> None:
        # Allocation shares lie on a grid of quantity decimals plus unit decimals: more unit
        # decimals than 18 leave that grid, and a batch could never settle.
        if not _whole_in(self.decimals, 0, MAX_INDEX_DECIMALS):
            raise IndexDefinitionError(
                f"index {self.symbol}: decimals must be a whole number from 0 to "
                f"{MAX_INDEX_DECIMALS}, got {self.decimals}")
        for c in self.constituents:
            problem = amount_problem(c.quantity) or (
                None if c.quantity > 0 else f"must be greater than zero, got {c.quantity}")
            if problem:
                raise IndexDefinitionError(f"index {self.symbol}: {c.asset} quantity {problem}")

    @property
    def assets(self) -> tuple[str, ...]:
        return tuple(c.asset for c in self.constituents)

    def price(self, asset_prices: Mapping[str, Decimal]) -> Decimal:
        """The value of one unit at the given per-asset prices."""
        return sum((c.quantity * asset_prices[c.asset] for c in self.constituents), ZERO)


def asset_quantities(holdings: Iterable[tuple[Index, Decimal]]) -> dict[str, Decimal]:
    """The asset quantities that make up the given index units (summed per index first)."""
    per_index: dict[str, tuple[Index, Decimal]] = {}
    for index, units in holdings:
        _, before = per_index.get(index.symbol, (index, ZERO))
        per_index[index.symbol] = (index, before + units)
    totals: dict[str, Decimal] = {}
    for index, units in per_index.values():
        for c in index.constituents:
            totals[c.asset] = totals.get(c.asset, ZERO) + c.quantity * units
    return totals


@dataclass(frozen=True, slots=True)
class WeightedConstituent:
    asset: str
    symbol: str
    weight: Decimal
    reference_price: Decimal


@exact
def quantities_from_weights(
    initial_price: Decimal, constituents: tuple[WeightedConstituent, ...]
) -> tuple[Constituent, ...]:
    """``q_i = initial_price * w_i / p_i`` with the weights normalised to sum to one."""
    total = sum((c.weight for c in constituents), ZERO)
    if total <= 0:
        raise IndexDefinitionError("weights: must sum to more than zero")
    return tuple(
        Constituent(c.asset, c.symbol, round_decimals(
            initial_price * (c.weight / total) / c.reference_price, QUANTITY_DECIMALS))
        for c in constituents
    )
