"""Liquidity fitting: how many index units each ready order can buy in the next batch.

Per asset the limit is best ask x (1 + tolerance) and the liquidity is the asks up to it (at
most ``max_levels`` levels) plus free inventory. The batch and in-flight caps take the orders
first come, first served (the oldest whole, the last one in part); their demand is collapsed
per asset and scarce liquidity is shared pro rata, each order being limited by its scarcest
asset; the asset orders to send are derived from the final engagements, so the caps hold for
what is actually sent. Inventory is used first, but when what it leaves to buy is below the
exchange's minimum and the need is not, the asset order buys the minimum and less inventory
is used; an asset order is never larger than the need (never padded up). One that would
still fail the exchange filters is not sent: orders needing that asset wait for inventory or
for company in a later batch, and take no share of the other assets meanwhile. An order is
not engaged for units worth less than ``smallest_fill`` (allocation would not give it such a
sliver). When no order can be engaged, ``plan_batch`` says why (``NoBatch``); ``planning``
chooses which orders to try.

``smallest_buy_cost`` prices the index's smallest quantity an order can buy on its own (the
engine's minimum order); ``can_be_engaged`` tells whether an order's remainder has a share any
batch could still buy (the engine completes an order with fills only when it has none).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from solver.core.market import Liquidity, MarketRules, OrderBook, buy_liquidity
from solver.core.model import Index, asset_quantities
from solver.core.money import (
    ONE,
    ZERO,
    ceil_decimals,
    divide_down,
    exact,
    floor_decimals,
    plain,
    quantum,
)
from solver.core.params import SolverParams


@dataclass(frozen=True, slots=True)
class Market:
    rules: MarketRules
    book: OrderBook


@dataclass(frozen=True, slots=True)
class Candidate:
    """A ready order: ``remaining`` collateral, optionally capped by a maximum index price."""

    order_id: int
    index: Index
    remaining: Decimal
    max_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Engagement:
    order_id: int
    units: Decimal


@dataclass(frozen=True, slots=True)
class PlannedAssetOrder:
    asset: str
    symbol: str
    price: Decimal
    quantity: Decimal


@dataclass(frozen=True, slots=True)
class BatchPlan:
    engagements: tuple[Engagement, ...]
    index_prices: Mapping[str, Decimal]
    asset_orders: tuple[PlannedAssetOrder, ...]
    inventory_used: Mapping[str, Decimal]

    @property
    def notional(self) -> Decimal:
        return sum((o.price * o.quantity for o in self.asset_orders), ZERO)


def asset_liquidity(
    indexes: Sequence[Index], markets: Mapping[str, Market], params: SolverParams
) -> dict[str, Liquidity]:
    """Limit and liquidity of every asset of ``indexes`` that has a book with asks."""
    found: dict[str, Liquidity] = {}
    for asset in {a for index in indexes for a in index.assets}:
        market = markets.get(asset)
        liquidity = market and buy_liquidity(
            market.book, market.rules, params.price_tolerance, params.max_levels)
        if liquidity:
            found[asset] = liquidity
    return found


def index_price(index: Index, liquidity: Mapping[str, Liquidity]) -> Decimal | None:
    """The price of one unit at the assets' limit prices, if every asset has one."""
    if any(a not in liquidity for a in index.assets):
        return None
    return sum((c.quantity * liquidity[c.asset].limit for c in index.constituents), ZERO)


@dataclass(frozen=True, slots=True)
class NoBatch:
    """Why a set of orders gives no batch, in words an operator can act on."""

    reason: str


@exact
def plan_batch(
    candidates: Sequence[Candidate],
    markets: Mapping[str, Market],
    free_inventory: Mapping[str, Decimal],
    params: SolverParams,
    room: Decimal,
    smallest_fill: Decimal = ZERO,
) -> BatchPlan | NoBatch:
    """Engage ``candidates`` (oldest first) within liquidity, caps and ``room`` in flight,
    none for units worth less than ``smallest_fill`` at the limit prices; or say why none
    can be engaged."""
    cap = min(params.max_batch_notional, room)
    if cap <= 0:
        return NoBatch(f"the asset orders in flight use up the room of "
                       f"{plain(params.max_inflight_notional)} (max_inflight_notional)")
    indexes = {c.index.symbol: c.index for c in candidates}
    liquidity = asset_liquidity(list(indexes.values()), markets, params)
    prices = {s: p for s, i in indexes.items() if (p := index_price(i, liquidity)) is not None}
    wanted = _wanted_units(candidates, prices, params)
    if not wanted:
        return NoBatch(_unpriced(candidates, prices))
    sendable, blocked = set(liquidity), dict[str, str]()
    while True:
        units = _fit(wanted, prices, liquidity, free_inventory, sendable, cap, smallest_fill)
        needed = _asset_needs(units)
        used = {a: min(free_inventory.get(a, ZERO), q) for a, q in needed.items()}
        orders = {a: _asset_order(a, markets[a].rules, liquidity[a], needed[a], used[a])
                  for a in needed if a in sendable and needed[a] > used[a]}
        unsendable = {a: order for a, order in orders.items() if isinstance(order, str)}
        for a, order in orders.items():
            if isinstance(order, PlannedAssetOrder):
                used[a] = min(used[a], needed[a] - order.quantity)
        if not unsendable:
            break
        blocked.update(unsendable)
        sendable -= set(unsendable)
        # An index that can no longer get one of its assets takes no share of the others.
        wanted = [(c, u) for c, u in wanted
                  if all(a in sendable or free_inventory.get(a, ZERO) > 0 for a in c.index.assets)]
    engagements = tuple(Engagement(c.order_id, u) for c, u in units if u > 0)
    if not engagements:
        return NoBatch("; ".join(blocked[a] for a in sorted(blocked)) or
                       "the liquidity within the price tolerance buys less than the smallest "
                       f"fill ({plain(smallest_fill)}) for any order")
    return BatchPlan(
        engagements=engagements,
        index_prices={s: prices[s] for s in {c.index.symbol for c, u in units if u > 0}},
        asset_orders=tuple(o for o in orders.values() if isinstance(o, PlannedAssetOrder)),
        inventory_used={a: q for a, q in used.items() if q > 0},
    )


def _unpriced(candidates: Sequence[Candidate], prices: Mapping[str, Decimal]) -> str:
    """Why none of ``candidates`` wants a unit: no ask for an asset, or above its max price."""
    symbols = sorted({c.index.symbol for c in candidates})
    unpriced = [s for s in symbols if s not in prices]
    if unpriced:
        return "no ask for every asset of " + ", ".join(unpriced)
    return "every order's max price is below its index's price at the limits, or its " \
           "collateral buys less than one unit"


def _wanted_units(
    candidates: Sequence[Candidate], prices: Mapping[str, Decimal], params: SolverParams
) -> list[tuple[Candidate, Decimal]]:
    """Units each order would buy with its usable collateral, before liquidity and caps."""
    wanted = []
    for c in candidates:
        price = prices.get(c.index.symbol)
        if price is None or not within_limit(c, price):
            continue
        units = order_units(c.index, c.remaining, price, params)
        if units > 0:
            wanted.append((c, units))
        if len(wanted) == params.max_orders_per_batch:
            break
    return wanted


def within_limit(order: Candidate, price: Decimal) -> bool:
    """Whether ``order`` may be engaged at the index ``price``: not above its max price."""
    return price > 0 and (order.max_price is None or price <= order.max_price)


def order_units(index: Index, remaining: Decimal, price: Decimal,
                params: SolverParams) -> Decimal:
    """The units one order's ``remaining`` collateral can be engaged for in a batch at the
    index ``price``: with the fee reserve kept back, at most ``max_order_notional``, floored
    to the index's decimals."""
    usable = min(remaining / (ONE + params.fee_reserve), params.max_order_notional)
    return floor_decimals(usable / price, index.decimals)


def limit_price(index: Index, markets: Mapping[str, Market],
                params: SolverParams) -> Decimal | None:
    """The price of one unit at today's limit prices, as ``plan_batch`` prices it; None when
    some asset has no ask."""
    return index_price(index, asset_liquidity([index], markets, params))


def one_order_cap(params: SolverParams) -> Decimal:
    """The most collateral one order can engage in a batch, the fee reserve included: its
    own cap or the batch's."""
    return min(params.max_order_notional, params.max_batch_notional) * (ONE + params.fee_reserve)


def within_caps(least: Decimal, params: SolverParams) -> bool:
    """Whether an index whose smallest tradable quantity costs ``least`` (as
    ``smallest_buy_cost`` counts) can be bought by one order in one batch under the caps."""
    return least <= one_order_cap(params)


def can_be_bought_alone(remaining: Decimal, least: Decimal | None,
                        params: SolverParams) -> bool:
    """Whether an order with ``remaining`` collateral can be bought in a batch of its own,
    its index's smallest tradable quantity costing ``least`` (None: no ask for every asset)."""
    return least is not None and remaining >= least and within_caps(least, params)


def can_be_engaged(index: Index, remaining: Decimal, price: Decimal, params: SolverParams,
                   smallest_fill: Decimal) -> bool:
    """Whether an order with ``remaining`` collateral has a share a batch could engage at the
    index ``price`` (together with other orders where the exchange minimums ask for it): at
    least one unit on the index's decimals, worth at least ``smallest_fill``."""
    return order_units(index, remaining, price, params) * price >= smallest_fill


def _fit(
    wanted: Sequence[tuple[Candidate, Decimal]],
    prices: Mapping[str, Decimal],
    liquidity: Mapping[str, Liquidity],
    inventory: Mapping[str, Decimal],
    sendable: set[str],
    cap: Decimal,
    smallest_fill: Decimal,
) -> list[tuple[Candidate, Decimal]]:
    """Take the orders oldest first within the cap, scale each index's by its scarcest asset,
    and drop engagements worth less than ``smallest_fill``."""
    capped = _first_come(wanted, prices, cap)
    per_index, indexes = _per_index(capped)
    demand = asset_quantities((indexes[s], total) for s, total in per_index.items())
    supply_ratio = {
        a: min(ONE, divide_down(
            inventory.get(a, ZERO) + (liquidity[a].quantity if a in sendable else ZERO), d))
        for a, d in demand.items()
    }
    ratio = {s: min(supply_ratio[a] for a in indexes[s].assets) for s in per_index}
    fitted = [(c, floor_decimals(u * ratio[c.index.symbol], c.index.decimals))
              for c, u in capped]
    return [(c, u if u * prices[c.index.symbol] >= smallest_fill else ZERO) for c, u in fitted]


def _first_come(wanted: Sequence[tuple[Candidate, Decimal]], prices: Mapping[str, Decimal],
                cap: Decimal) -> list[tuple[Candidate, Decimal]]:
    """The orders' units, oldest first, as far as ``cap`` goes at the limit prices."""
    left, taken = cap, []
    for c, units in wanted:
        price = prices[c.index.symbol]
        take = min(units, floor_decimals(divide_down(left, price), c.index.decimals))
        if take > 0:
            taken.append((c, take))
            left -= take * price
    return taken


def _asset_needs(units: Sequence[tuple[Candidate, Decimal]]) -> dict[str, Decimal]:
    return asset_quantities((c.index, u) for c, u in units)


def _per_index(
    units: Sequence[tuple[Candidate, Decimal]],
) -> tuple[dict[str, Decimal], dict[str, Index]]:
    """Units summed per index: orders of one index share every ratio."""
    totals: dict[str, Decimal] = {}
    indexes: dict[str, Index] = {}
    for c, u in units:
        totals[c.index.symbol] = totals.get(c.index.symbol, ZERO) + u
        indexes[c.index.symbol] = c.index
    return totals, indexes


def _asset_order(
    asset: str, rules: MarketRules, liquidity: Liquidity, needed: Decimal, inventory: Decimal
) -> PlannedAssetOrder | str:
    """The order for what ``inventory`` does not cover of ``needed``, floored to the filters;
    if that is below the exchange's minimum but ``needed`` is not, the order buys the minimum
    and less inventory is used (never more than is needed); if it cannot be sent, why not."""
    least = rules.min_buy_quantity(liquidity.limit)
    wanted = needed - inventory
    if wanted < least <= needed:
        wanted = least
    quantity = rules.buy_quantity(min(wanted, liquidity.quantity))
    failure = rules.filter_failure(liquidity.limit, quantity)
    if failure:
        return (f"{rules.symbol}: the orders' buy of {plain(quantity)} at "
                f"{plain(liquidity.limit)} fails {failure} ({rules.describe()})")
    return PlannedAssetOrder(asset, rules.symbol, liquidity.limit, quantity)


@exact
def smallest_buy_cost(
    index: Index,
    markets: Mapping[str, Market],
    params: SolverParams,
    smallest_fill: Decimal = ZERO,
) -> Decimal | None:
    """The least collateral that buys the index's smallest tradable quantity on its own, at
    the limit prices and with the fee reserve, as ``plan_batch`` counts; None without an ask
    for every asset.

    The smallest tradable quantity is the fewest units (on the index's decimals) for which
    every constituent's buy passes its market's LOT_SIZE and NOTIONAL filters at its limit
    price, and that are worth at least ``smallest_fill``. An order whose remaining collateral is
    below this can still be engaged together with other orders of the same index, never alone.
    """
    liquidity = asset_liquidity([index], markets, params)
    price = index_price(index, liquidity)
    if price is None or price <= 0:
        return None
    units = max(smallest_fill / price, quantum(index.decimals))
    for c in index.constituents:
        if c.quantity > 0:
            least = markets[c.asset].rules.min_buy_quantity(liquidity[c.asset].limit)
            units = max(units, least / c.quantity)
    return ceil_decimals(units, index.decimals) * price * (ONE + params.fee_reserve)


@exact
def quote(
    index: Index,
    collateral: Decimal,
    markets: Mapping[str, Market],
    free_inventory: Mapping[str, Decimal],
    params: SolverParams,
) -> tuple[Decimal, Decimal] | None:
    """(index price at the limits, units ``collateral`` buys within today's liquidity)."""
    liquidity = asset_liquidity([index], markets, params)
    price = index_price(index, liquidity)
    if price is None or price <= 0:
        return None
    units = collateral / (ONE + params.fee_reserve) / price
    for c in index.constituents:
        available = liquidity[c.asset].quantity + free_inventory.get(c.asset, ZERO)
        units = min(units, available / c.quantity)
    return price, floor_decimals(units, index.decimals)
