"""Mints: each closed order with units asks for its mint once, retries with a doubling delay
after a failure, and records the transaction that minted it. The engine's handlers for the
chain's facts; the order's state moves only by its transition table (``orders``)."""

from __future__ import annotations

from solver.core import events as ev
from solver.core.commands import MintConfirmed, MintFailed, MintRefused, SettlementMoved
from solver.core.money import floor_decimals
from solver.core.orders import IndexOrder, OrderState
from solver.core.state import State


def requested(state: State, order: IndexOrder) -> list[ev.Event]:
    """Ask for the mint of a closed order's whole units, if it has any."""
    units = floor_decimals(order.filled_units, state.indexes[order.index].decimals)
    if units <= 0:
        state.inventory.final(order.id)
        return []
    order.request_mint()
    return [ev.MintRequested(order.id, order.account, order.wallet, order.index, units,
                             order.signed)]


def confirmed(state: State, fact: MintConfirmed) -> list[ev.Event]:
    order = state.orders.get(fact.order_id)
    if order is None or order.state not in (OrderState.MINTING, OrderState.MINT_RETRY_WAIT):
        return [ev.InputIgnored(f"no mint outstanding for order {fact.order_id}")]
    order.minted(fact.tx_hash, floor_decimals(order.filled_units,
                                              state.indexes[order.index].decimals))
    state.inventory.final(order.id)
    return [ev.IndexOrderMinted(order.id, order.minted_units, fact.tx_hash, order.snapshot())]


def moved(state: State, fact: SettlementMoved) -> list[ev.Event]:
    order = state.orders.get(fact.order_id)
    if order is None or order.state is not OrderState.MINTED or order.mint_tx is None:
        return [ev.InputIgnored(f"order {fact.order_id} has no settlement to move")]
    if order.mint_tx == fact.tx_hash:
        return [ev.InputIgnored(f"order {fact.order_id}'s settlement is {fact.tx_hash} already")]
    previous = order.mint_tx
    order.mint_moved(fact.tx_hash)
    return [ev.IndexOrderMintRestated(order.id, previous, fact.tx_hash, order.snapshot())]


def failed(state: State, fact: MintFailed) -> list[ev.Event]:
    order = state.orders.get(fact.order_id)
    if order is None or order.state is not OrderState.MINTING \
            or fact.attempt != order.mint_attempts:
        return [ev.InputIgnored(f"no mint attempt {fact.attempt} in progress for order "
                                f"{fact.order_id}")]
    params = state.params
    delay = min(params.mint_retry_delay_ms * 2 ** (order.mint_attempts - 1),
                params.max_mint_retry_delay_ms)
    order.mint_failed(fact.ts + delay)
    return [ev.MintRetryScheduled(order.id, order.mint_attempts + 1, fact.ts + delay,
                                  fact.reason)]


def refused(state: State, fact: MintRefused) -> list[ev.Event]:
    """The vault will never settle the order: its units go back to the house's free
    inventory, what it spent back to the account (nothing was charged on-chain)."""
    order = state.orders.get(fact.order_id)
    if order is None or order.state is not OrderState.MINTING \
            or fact.attempt != order.mint_attempts:
        return [ev.InputIgnored(f"no mint attempt {fact.attempt} in progress for order "
                                f"{fact.order_id}")]
    units, fees = order.filled_units, order.fees
    refunded = order.mint_refused()
    lots = state.inventory.give_back(order.id)
    state.ledger.refund(order.account, order.collateral_asset, refunded, fees)
    return [ev.IndexOrderMintRefused(order.id, units, refunded, fact.reason, lots,
                                     order.snapshot()),
            ev.CollateralRefunded(order.account, order.collateral_asset, refunded, fees,
                                  order.id, state.balance_of(order))]


def failed_mints(state: State) -> list[IndexOrder]:
    """The orders whose failed mint waits to be asked for again."""
    return [o for o in state.orders.values() if o.state is OrderState.MINT_RETRY_WAIT]


def retrying(state: State, now: int) -> list[IndexOrder]:
    """The orders whose failed mint is due to be asked for again at ``now``."""
    return [o for o in failed_mints(state)
            if o.mint_retry_at is not None and o.mint_retry_at <= now]


def retries_due(state: State, now: int) -> list[ev.Event]:
    """Ask again for every failed mint whose delay has passed."""
    events: list[ev.Event] = []
    for order in retrying(state, now):
        order.retry_mint()
        units = floor_decimals(order.filled_units, state.indexes[order.index].decimals)
        events.append(ev.MintRetryRequested(order.id, order.account, order.wallet,
                                            order.index, units, order.mint_attempts,
                                            order.signed))
    return events
