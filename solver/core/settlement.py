"""Settling a batch: once every asset order of it is final and its trades recorded, its lots
are allocated to its orders at the pools' average prices, each order is charged for its fill,
and an order closes when what it has left can buy nothing (or when it was cancelled or expired
while the batch was in flight)."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from solver.core import events as ev
from solver.core.allocation import EngagedOrder, allocate, min_fill_value
from solver.core.batches import Batch
from solver.core.fitting import (
    can_be_bought_alone,
    can_be_engaged,
    limit_price,
    smallest_buy_cost,
    within_caps,
)
from solver.core.money import ceil_decimals, plain, quantum
from solver.core.orders import IndexOrder, OrderState, OrderStatus

if TYPE_CHECKING:
    from solver.core.engine import Engine

Events = list[ev.Event]
IndexPrices = dict[str, Decimal | None]
"""Each index's limit price, found once per transaction."""


def settle_if_done(engine: Engine, batch: Batch) -> Events:
    if batch.settled or not all(engine.asset_orders[i].is_done for i in batch.asset_order_ids):
        return []
    return _settle(engine, batch)

def _settle(engine: Engine, batch: Batch) -> Events:
    """Allocate the batch's lots to its orders at pool VWAPs; complete what is done."""
    engaged = [EngagedOrder(oid, engine.indexes[o.index], units, o.remaining, o.max_price)
               for oid, units in batch.engagements.items() if (o := engine.orders[oid])]
    assets = {a for e in engaged for a in e.index.assets}
    pools = {a: engine.inventory.pool(batch.id, a) for a in sorted(assets)}
    decimals = engine.collaterals[engaged[0].index.collateral].decimals
    allocation = allocate(engaged, pools, decimals)
    engine.inventory.settle(batch.id, allocation.assignments)
    batch.settled = True
    batch.vwaps = {a: p.vwap for a, p in allocation.prices.items()}
    batch.filled_units = {a.order_id: a.units for a in allocation.orders}
    events: Events = [ev.BatchSettled(batch.id, tuple(batch.filled_units.items()),
                                      tuple(sorted(batch.vwaps.items())),
                                      allocation.assignments)]
    prices: IndexPrices = {}
    for allocated in allocation.orders:
        order = engine.orders[allocated.order_id]
        if order.state is OrderState.ENGAGED:
            order.settle()
        if allocated.units:
            events += _fill(engine, order, batch.id, allocated.units, allocated.cost,
                                 allocated.fees)
        events += complete_if_done(engine, order, prices)
    return events

def _fill(engine: Engine, order: IndexOrder, batch_id: int, units: Decimal, cost: Decimal,
      fees: Decimal) -> Events:
    order.filled_units += units
    order.spent += cost
    order.fees += fees
    engine.ledger.spend(order.account, order.collateral_asset, cost, fees)
    return [
        ev.IndexOrderFilled(order.id, batch_id, units, cost / units, cost, fees,
                            order.filled_units, order.spent, order.remaining,
                            order.snapshot()),
        ev.CollateralSpent(order.account, order.collateral_asset, cost, fees, order.id,
                           engine.balance_of(order)),
    ]

def complete_if_done(engine: Engine, order: IndexOrder, prices: IndexPrices) -> Events:
    if order.ending is not None:
        return engine.complete(order, order.ending, order.ending_request,
                              order.ending_reason)
    reason = nothing_left_to_buy(engine, order, prices)
    return engine.complete(order, OrderStatus.FILLED, reason=reason) if reason else []

def nothing_left_to_buy(engine: Engine, order: IndexOrder, prices: IndexPrices) -> str:
    """Why an open order with fills is complete, or "" while a batch could still buy for
    it. Only a remainder no batch can use completes it: one at or below the dust
    threshold, or too small for the order's own share of one batch at today's limit
    prices (less than one unit on the index's decimals, or worth less than the smallest
    fill). A remainder too small to be bought alone, because of the exchange's minimums,
    is no reason: batches sum the orders of an index, and the minimums apply to the sum.
    An order without fills is never completed this way (it ends cancelled or expired).
    ``prices`` caches each index's limit price for the transaction."""
    if not order.filled_units:
        return ""
    asset = order.collateral_asset
    if not order.remaining:
        return "filled: all of its collateral was spent"
    if order.remaining <= engine.params.dust_threshold:
        return (f"filled: the {plain(order.remaining)} {asset} left is at or below the "
                f"dust threshold of {plain(engine.params.dust_threshold)} {asset}")
    index = engine.indexes[order.index]
    if index.symbol not in prices:
        prices[index.symbol] = limit_price(index, engine.markets(), engine.params)
    price = prices[index.symbol]
    smallest = min_fill_value(engine.collaterals[asset].decimals)
    if price is None or can_be_engaged(index, order.remaining, price, engine.params,
                                       smallest):
        return ""
    return (f"filled: the {plain(order.remaining)} {asset} left buys less than the "
            f"smallest fill of {index.symbol} ({plain(quantum(index.decimals))} unit, "
            f"at least {plain(smallest)} {asset}; {plain(price)} {asset} a unit)")


def bound_waits(engine: Engine, orders: list[IndexOrder], now: int) -> Events:
    """Orders too small to be bought alone wait for other orders of their index for at most
    ``completion_wait_ms``: then an order with fills completes as filled and one without
    expires, each releasing what it has left with the reason. An order that can be bought
    alone again waits no more (its clock stops); one that becomes too small starts it."""
    least: dict[str, Decimal | None] = {}
    markets = engine.markets() if orders else {}
    events: Events = []
    for order in orders:
        if order.index not in least:
            index = engine.indexes[order.index]
            decimals = engine.collaterals[index.collateral].decimals
            cost = smallest_buy_cost(index, markets, engine.params, min_fill_value(decimals))
            least[order.index] = None if cost is None else ceil_decimals(cost, decimals)
        cost = least[order.index]
        if cost is None or can_be_bought_alone(order.remaining, cost, engine.params):
            order.waits_until = None
        elif order.waits_until is None:
            order.waits_until = now + engine.params.completion_wait_ms
        elif order.waits_until <= now:
            events += _end_waiting(engine, order, cost)
    return events


def _end_waiting(engine: Engine, order: IndexOrder, cost: Decimal) -> Events:
    asset, seconds = order.collateral_asset, plain(Decimal(engine.params.completion_wait_ms)
                                                   / 1000)
    why = (f"the {plain(order.remaining)} {asset} left cannot buy the smallest tradable "
           f"quantity of {order.index} alone ({plain(cost)} {asset} at today's prices"
           f"{'' if within_caps(cost, engine.params) else ', more than the caps allow'}), "
           f"and no batch could buy it with other orders of {order.index} within {seconds} s")
    if order.filled_units:
        return engine.complete(order, OrderStatus.FILLED, reason=f"filled: {why}")
    return engine.complete(order, OrderStatus.EXPIRED, reason=f"expired: {why}")
