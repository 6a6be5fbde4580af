"""What any handler may do to an order or an account: credit collateral, complete or end an
order, reduce it (and whether it may be), complete it when nothing is left to buy. Each takes
the state and returns the events it caused."""

from __future__ import annotations

from decimal import Decimal

from solver.core import events as ev
from solver.core import minting
from solver.core.allocation import min_fill_value
from solver.core.fitting import (
    can_be_engaged,
    limit_price,
    one_order_cap,
    smallest_buy_cost,
    within_caps,
)
from solver.core.model import Index
from solver.core.money import ZERO, ceil_decimals, plain, quantum
from solver.core.orders import (
    CancelRejectReason,
    IndexOrder,
    OrderState,
    OrderStatus,
    Refusal,
    RejectReason,
    amount_refusal,
    reduction_refusal,
)
from solver.core.state import Events, State

IndexPrices = dict[str, Decimal | None]
"""Each index's limit price, found once per transaction."""


def credit(state: State, account: str, asset: str, amount: Decimal,
           deposit_id: str) -> ev.CollateralDeposited:
    state.ledger.credit(account, asset, amount)
    return ev.CollateralDeposited(account, asset, amount, deposit_id,
                                  state.ledger.balance(account, asset))


def complete(state: State, order: IndexOrder, status: OrderStatus, request_id: str = "",
              reason: str = "") -> Events:
    """Close the order: release every unspent unit, ask for its mint once."""
    order.close(status)
    del state.open[order.id]
    state.ledger.release(order.account, order.collateral_asset, order.released)
    events: Events = [ev.IndexOrderCompleted(order.id, status, order.filled_units,
                                             order.spent, order.released, order.snapshot(),
                                             request_id, reason)]
    if order.released:
        events.append(ev.CollateralReleased(order.account, order.collateral_asset,
                                            order.released, order.id, state.balance_of(order)))
    return events + minting.requested(state, order)


def end_order(state: State, order: IndexOrder, status: OrderStatus, request_id: str = "",
               reason: str = "") -> Events:
    if order.state is OrderState.READY:
        return complete(state, order, status, request_id, reason)
    order.end_when_settled(status, request_id, reason)
    return [ev.IndexOrderEndPending(order.id, status, order.snapshot(), request_id)]


def reduce(state: State, order: IndexOrder, collateral: Decimal, request_id: str = "",
           reason: str = "") -> Events:
    """Lower the order's total to ``collateral`` (``reduce_refusal`` allows it)."""
    released = order.collateral - collateral
    order.collateral = collateral
    state.ledger.release(order.account, order.collateral_asset, released)
    events: Events = [
        ev.IndexOrderReduced(order.id, order.collateral, released, order.snapshot(),
                             request_id, reason),
        ev.CollateralReleased(order.account, order.collateral_asset, released, order.id,
                              state.balance_of(order)),
    ]
    if order.batch_id is None:
        events += complete_if_done(state, order, {})
    return events


def reduce_refusal(state: State, order: IndexOrder, collateral: Decimal) -> Refusal | None:
    decimals = state.collaterals[order.collateral_asset].decimals
    refusal = (amount_refusal(collateral, decimals, order.collateral_asset,
                              CancelRejectReason)
               or reduction_refusal(order, collateral,
                                    order.spent + engaged_budget(state, order)))
    if refusal or order.filled_units:
        return refusal
    # Without fills, the order must still be one that could be bought on its own.
    return minimum_refusal(state, state.indexes[order.index], collateral, CancelRejectReason)


def engaged_budget(state: State, order: IndexOrder) -> Decimal:
    """The most the order's batch in flight may still charge it."""
    if order.batch_id is None:
        return ZERO
    batch = state.batches[order.batch_id]
    at_limits = batch.engagements[order.id] * batch.index_prices[order.index]
    return min(order.remaining, at_limits * (1 + state.params.fee_reserve))


def minimum_refusal(state: State, index: Index, collateral: Decimal,
                     reason: type[RejectReason | CancelRejectReason]) -> Refusal | None:
    """An order must be able to buy the index's smallest tradable quantity on its own at
    today's books and exchange filters, so that it never waits for company it may not
    get; without a book for every asset only ``min_order_collateral`` applies."""
    asset, least = index.collateral, state.params.min_order_collateral
    if collateral < least:
        return Refusal(reason.BELOW_MINIMUM, f"the minimum order is {plain(least)} {asset}")
    decimals = state.collaterals[asset].decimals
    cost = smallest_buy_cost(index, state.markets(), state.params, min_fill_value(decimals))
    if cost is None:
        return None
    if not within_caps(cost, state.params):
        return Refusal(reason.NOT_TRADABLE, (
            f"{index.symbol} cannot be bought at today's prices within the caps: its "
            f"smallest tradable quantity costs {plain(ceil_decimals(cost, decimals))} "
            f"{asset}, more than one order may engage in a batch "
            f"({plain(one_order_cap(state.params))} {asset} with the fee reserve)"))
    if collateral >= cost:
        return None
    return Refusal(reason.BELOW_MINIMUM, (
        f"the smallest {index.symbol} order at today's prices is "
        f"{plain(ceil_decimals(cost, decimals))} {asset}: less cannot buy the index's "
        "smallest tradable quantity (the exchange's minimum quantities and notionals) "
        "with the fee reserve"))


def complete_if_done(state: State, order: IndexOrder, prices: IndexPrices) -> Events:
    if order.ending is not None:
        return complete(state, order, order.ending, order.ending_request,
                              order.ending_reason)
    reason = nothing_left_to_buy(state, order, prices)
    return complete(state, order, OrderStatus.FILLED, reason=reason) if reason else []

def nothing_left_to_buy(state: State, order: IndexOrder, prices: IndexPrices) -> str:
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
    if order.remaining <= state.params.dust_threshold:
        return (f"filled: the {plain(order.remaining)} {asset} left is at or below the "
                f"dust threshold of {plain(state.params.dust_threshold)} {asset}")
    index = state.indexes[order.index]
    if index.symbol not in prices:
        prices[index.symbol] = limit_price(index, state.markets(), state.params)
    price = prices[index.symbol]
    smallest = min_fill_value(state.collaterals[asset].decimals)
    if price is None or can_be_engaged(index, order.remaining, price, state.params,
                                       smallest):
        return ""
    return (f"filled: the {plain(order.remaining)} {asset} left buys less than the "
            f"smallest fill of {index.symbol} ({plain(quantum(index.decimals))} unit, "
            f"at least {plain(smallest)} {asset}; {plain(price)} {asset} a unit)")
