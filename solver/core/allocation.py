"""Allocating a settled batch's lots to its index orders.

Each asset's pool (held inventory, then the batch's fills) is shared pro rata to the orders'
engaged quantities; an order's units are the minimum over its assets, so every order of an
index gets the same fill ratio. Every order pays each asset's pool VWAP plus its pro-rata share
of the pool's fees: the result does not depend on the order in which fills arrived.

A charge is rounded up to the collateral's decimals, which adds up to one smallest unit of the
collateral. So that this never makes a fill's price absurd, no order is given units worth less
than ``min_fill_value`` (what it cannot be charged for fairly stays in inventory, like every
other rounding leftover): a fill's price is then within ``MAX_ROUNDING_MARKUP`` of the pool's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from solver.core.inventory import Assignment, Pooled
from solver.core.model import Index, asset_quantities
from solver.core.money import (
    ONE,
    SHARE_DECIMALS,
    ZERO,
    ceil_decimals,
    divide_down,
    exact,
    floor_decimals,
    quantum,
)
from solver.core.signed_terms import SignedTerms

MAX_ROUNDING_MARKUP = Decimal("0.0001")
"""The most that rounding a charge up may add to a fill's price: one basis point."""


def min_fill_value(collateral_decimals: int) -> Decimal:
    """The least value a fill may have, so that rounding its charge up to the collateral's
    decimals adds less than ``MAX_ROUNDING_MARKUP``: 0.01 for a 6-decimal collateral."""
    return quantum(collateral_decimals) / MAX_ROUNDING_MARKUP


@dataclass(frozen=True, slots=True)
class EngagedOrder:
    order_id: int
    index: Index
    units: Decimal
    remaining: Decimal
    """Collateral the order can still spend; its cost never exceeds it."""
    max_price: Decimal | None = None
    """The most the order pays per unit before fees."""
    signed: SignedTerms | None = None
    """What the wallet signed: a fill it does not allow is not allocated."""


@dataclass(frozen=True, slots=True)
class OrderAllocation:
    order_id: int
    units: Decimal
    cost: Decimal
    """Collateral charged, fees included, rounded up to the collateral's decimals."""
    fees: Decimal


@dataclass(frozen=True, slots=True)
class PoolPrice:
    vwap: Decimal
    fee_per_unit: Decimal


@dataclass(frozen=True, slots=True)
class Allocation:
    orders: tuple[OrderAllocation, ...]
    assignments: tuple[Assignment, ...]
    prices: Mapping[str, PoolPrice]


@exact
def allocate(
    engaged: Sequence[EngagedOrder],
    pools: Mapping[str, Sequence[Pooled]],
    collateral_decimals: int,
) -> Allocation:
    quantities = {a: sum((s.quantity for s in pool), ZERO) for a, pool in pools.items()}
    prices = {a: _pool_price(pool, quantities[a]) for a, pool in pools.items() if quantities[a]}
    ratios = _fill_ratios(engaged, quantities)
    smallest = min_fill_value(collateral_decimals)
    orders = []
    for order in engaged:
        index = order.index
        unit_cost, unit_fee = _unit_cost(index, prices)
        units = floor_decimals(order.units * ratios[index.symbol], index.decimals)
        if order.max_price is not None and unit_cost - unit_fee > order.max_price:
            units = ZERO  # older, dearer inventory in the pool: the order waits instead
        if units and units * unit_cost > order.remaining:
            units = floor_decimals(divide_down(order.remaining, unit_cost), index.decimals)
        if units * unit_cost < smallest:
            units = ZERO  # a sliver: its charge, rounded up, would overprice it
        cost = ceil_decimals(units * unit_cost, collateral_decimals)
        fees = min(cost, floor_decimals(units * unit_fee, collateral_decimals))
        if order.signed is not None and not order.signed.allows(units, cost, fees):
            units = cost = fees = ZERO  # the vault would refuse it: the order waits instead
        orders.append(OrderAllocation(order.order_id, units, cost, fees))
    assignments = _assign(engaged, orders, pools, quantities)
    return Allocation(tuple(orders), assignments, prices)


def _pool_price(pool: Sequence[Pooled], quantity: Decimal) -> PoolPrice:
    notional = sum((s.price * s.quantity for s in pool), ZERO)
    fees = sum((s.fee for s in pool), ZERO)
    return PoolPrice(notional / quantity, fees / quantity)


def _fill_ratios(
    engaged: Sequence[EngagedOrder], quantities: Mapping[str, Decimal]
) -> dict[str, Decimal]:
    """Per index, the share of its engaged units that the scarcest asset's pool covers."""
    needed = asset_quantities((o.index, o.units) for o in engaged)
    asset_ratio = {
        asset: min(ONE, divide_down(quantities.get(asset, ZERO), need)) if need else ONE
        for asset, need in needed.items()
    }
    indexes = {o.index.symbol: o.index for o in engaged}
    return {symbol: min(asset_ratio[a] for a in index.assets) for symbol, index in indexes.items()}


def _unit_cost(index: Index, prices: Mapping[str, PoolPrice]) -> tuple[Decimal, Decimal]:
    cost = fee = ZERO
    for c in index.constituents:
        price = prices.get(c.asset)
        if price is None:
            return ZERO, ZERO  # no pool: the order gets no units, so it costs nothing
        cost += c.quantity * (price.vwap + price.fee_per_unit)
        fee += c.quantity * price.fee_per_unit
    return cost, fee


def _assign(
    engaged: Sequence[EngagedOrder],
    orders: Sequence[OrderAllocation],
    pools: Mapping[str, Sequence[Pooled]],
    quantities: Mapping[str, Decimal],
) -> tuple[Assignment, ...]:
    """Take the same share of every slice of a pool, so what is left keeps the pool's VWAP,
    and hand those shares out to the orders in turn."""
    wants: dict[str, list[tuple[int, Decimal]]] = {asset: [] for asset in pools}
    for order, allocated in zip(engaged, orders, strict=True):
        if allocated.units:
            for c in order.index.constituents:
                wants[c.asset].append((order.order_id, c.quantity * allocated.units))
    assignments: list[Assignment] = []
    for asset, pool in pools.items():
        shares = _shares(pool, quantities[asset], sum((w for _, w in wants[asset]), ZERO))
        position, used = 0, ZERO
        for order_id, want in wants[asset]:
            while want > 0:
                left = shares[position] - used
                if want < left:
                    assignments.append(Assignment(pool[position].id, order_id, want))
                    used += want
                    break
                if left > 0:
                    assignments.append(Assignment(pool[position].id, order_id, left))
                want -= left
                position, used = position + 1, ZERO
    return tuple(assignments)


def _shares(pool: Sequence[Pooled], total: Decimal, wanted: Decimal) -> list[Decimal]:
    """``wanted`` split over the pool's ``total`` pro rata, exactly, none above its slice."""
    if not wanted or not total:
        return []
    if wanted == total:
        return [piece.quantity for piece in pool]
    fraction = divide_down(wanted, total)
    shares = [floor_decimals(s.quantity * fraction, SHARE_DECIMALS) for s in pool]
    short = wanted - sum(shares, ZERO)  # rounding dust, >= 0
    for n, piece in enumerate(pool):
        add = min(short, piece.quantity - shares[n])
        shares[n] += add
        short -= add
    return shares
