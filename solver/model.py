"""Index definitions and the collateral assets they are bought with."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from solver.money import QUANTITY_DECIMALS, ZERO, exact, round_decimals


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


@dataclass(frozen=True, slots=True)
class Index:
    symbol: str
    collateral: str
    constituents: tuple[Constituent, ...]
    decimals: int = 18

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


class IndexDefinitionError(ValueError):
    """A definition that cannot describe an index; the message names the field at fault."""


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
