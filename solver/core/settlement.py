"""Settling a batch: once every asset order of it is final and its trades recorded, its lots
are allocated to its orders at the pools' average prices, each order is charged for its fill,
and an order closes when what it has left can buy nothing (or when it was cancelled or expired
while the batch was in flight)."""

from __future__ import annotations

from decimal import Decimal

from solver.core import events as ev
from solver.core.actions import IndexPrices, complete, complete_if_done
from solver.core.allocation import EngagedOrder, allocate, min_fill_value
from solver.core.batches import Batch
from solver.core.fitting import (
    can_be_bought_alone,
    smallest_buy_cost,
    within_caps,
)
from solver.core.money import ceil_decimals, plain
from solver.core.orders import IndexOrder, OrderState, OrderStatus
from solver.core.state import Events, State


def settle_if_done(state: State, batch: Batch) -> Events:
    if batch.settled or not all(state.asset_orders[i].is_done for i in batch.asset_order_ids):
        return []
    return _settle(state, batch)

def _settle(state: State, batch: Batch) -> Events:
    """Allocate the batch's lots to its orders at pool VWAPs; complete what is done."""
    engaged = [EngagedOrder(oid, state.indexes[o.index], units, o.remaining,
                            o.price_bound(state.params.fee_reserve), o.signed)
               for oid, units in batch.engagements.items() if (o := state.orders[oid])]
    assets = {a for e in engaged for a in e.index.assets}
    pools = {a: state.inventory.pool(batch.id, a) for a in sorted(assets)}
    decimals = state.collaterals[engaged[0].index.collateral].decimals
    allocation = allocate(engaged, pools, decimals)
    state.inventory.settle(batch.id, allocation.assignments)
    batch.settle({a.order_id: a.units for a in allocation.orders},
                 {a: p.vwap for a, p in allocation.prices.items()})
    events: Events = [ev.BatchSettled(batch.id, tuple(batch.filled_units.items()),
                                      tuple(sorted(batch.vwaps.items())),
                                      allocation.assignments)]
    prices: IndexPrices = {}
    for allocated in allocation.orders:
        order = state.orders[allocated.order_id]
        if order.state is OrderState.ENGAGED:
            order.settle()
        if allocated.units:
            events += _fill(state, order, batch.id, allocated.units, allocated.cost,
                                 allocated.fees)
        events += complete_if_done(state, order, prices)
    return events

def _fill(state: State, order: IndexOrder, batch_id: int, units: Decimal, cost: Decimal,
      fees: Decimal) -> Events:
    order.filled_units += units
    order.spent += cost
    order.fees += fees
    state.ledger.spend(order.account, order.collateral_asset, cost, fees)
    return [
        ev.IndexOrderFilled(order.id, batch_id, units, cost / units, cost, fees,
                            order.filled_units, order.spent, order.remaining,
                            order.snapshot()),
        ev.CollateralSpent(order.account, order.collateral_asset, cost, fees, order.id,
                           state.balance_of(order)),
    ]

def bound_waits(state: State, orders: list[IndexOrder], now: int) -> Events:
    """Orders too small to be bought alone wait for other orders of their index for at most
    ``completion_wait_ms``: then an order with fills completes as filled and one without
    expires, each releasing what it has left with the reason. An order that can be bought
    alone again waits no more (its clock stops); one that becomes too small starts it."""
    least: dict[str, Decimal | None] = {}
    markets = state.markets() if orders else {}
    events: Events = []
    for order in orders:
        if order.index not in least:
            index = state.indexes[order.index]
            decimals = state.collaterals[index.collateral].decimals
            cost = smallest_buy_cost(index, markets, state.params, min_fill_value(decimals))
            least[order.index] = None if cost is None else ceil_decimals(cost, decimals)
        cost = least[order.index]
        if cost is None or can_be_bought_alone(order.remaining, cost, state.params):
            order.waits_until = None
        elif order.waits_until is None:
            order.waits_until = now + state.params.completion_wait_ms
        elif order.waits_until <= now:
            events += _end_waiting(state, order, cost)
    return events


def _end_waiting(state: State, order: IndexOrder, cost: Decimal) -> Events:
    asset, seconds = order.collateral_asset, plain(Decimal(state.params.completion_wait_ms)
                                                   / 1000)
    why = (f"the {plain(order.remaining)} {asset} left cannot buy the smallest tradable "
           f"quantity of {order.index} alone ({plain(cost)} {asset} at today's prices"
           f"{'' if within_caps(cost, state.params) else ', more than the caps allow'}), "
           f"and no batch could buy it with other orders of {order.index} within {seconds} s")
    if order.filled_units:
        return complete(state, order, OrderStatus.FILLED, reason=f"filled: {why}")
    return complete(state, order, OrderStatus.EXPIRED, reason=f"expired: {why}")
