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
from solver.core.fitting import can_be_engaged, limit_price
from solver.core.money import plain, quantum
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
