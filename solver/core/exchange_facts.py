"""The exchange's facts applied: books, acknowledgements, fills (each a lot, once), the ends
of asset orders (a batch settles when all of its are final), commissions paid in a third
asset, and the operator's funding of that asset."""

from __future__ import annotations

from decimal import Decimal

from solver.core import events as ev
from solver.core.batches import AssetOrder
from solver.core.commands import (
    AssetOrderAccepted,
    AssetOrderEnded,
    AssetOrderFilled,
    BookUpdated,
    FeeAssetFunded,
)
from solver.core.fee_assets import FeeAsset
from solver.core.inventory import Lot, lot_id
from solver.core.money import MAX_AMOUNT, ZERO
from solver.core.settlement import settle_if_done
from solver.core.state import Events, State


def book_updated(state: State, fact: BookUpdated) -> Events:
    asset = state.assets_by_symbol.get(fact.book.symbol)
    if asset is None:
        return [ev.InputIgnored(f"book for unknown symbol {fact.book.symbol}")]
    if not fact.book.is_well_formed():
        return [ev.InputIgnored(f"book {fact.book.symbol}: levels must be positive, below "
                                f"{MAX_AMOUNT:.0E} and sorted best first")]
    state.books[asset] = fact.book
    return []


def accepted(state: State, fact: AssetOrderAccepted) -> Events:
    order = state.asset_orders.get(fact.asset_order_id)
    if order is None:
        return [ev.InputIgnored(f"unknown asset order {fact.asset_order_id}")]
    order.accept(fact.exchange_order_id)
    return []


def filled(state: State, fact: AssetOrderFilled) -> Events:
    order = state.asset_orders.get(fact.asset_order_id)
    if order is None:
        return [ev.InputIgnored(f"unknown asset order {fact.asset_order_id}")]
    lid = lot_id(order.symbol, fact.trade_id)
    if state.inventory.lot(lid) is not None:
        return [ev.InputIgnored(f"trade {lid} already recorded")]
    if not (_sane(fact.price) and _sane(fact.quantity) and _sane(fact.commission, ZERO)) \
            or (fact.commission_asset == order.asset and fact.commission > fact.quantity):
        return [ev.InputIgnored(f"trade {lid}: price, quantity or commission out of range")]
    lot = lot_of(state, order, fact, lid)
    order.filled += fact.quantity
    state.inventory.open(lot)
    events: Events = [ev.LotOpened(lot.id, lot.asset, order.id, order.batch_id, lot.price,
                                   lot.quantity, lot.fee)]
    if fact.commission and fact.commission_asset not in (order.asset, state.rules[
            order.asset].quote):
        events.append(debit_commission(state, lot, fact))
    batch = state.batches[order.batch_id]
    if batch.settled:  # a trade reported after its batch settled becomes free inventory
        state.inventory.settle(batch.id, ())
        return events
    return events + settle_if_done(state, batch)


def lot_of(state: State, order: AssetOrder, fact: AssetOrderFilled, lid: str) -> Lot:
    """A fill as a lot: an asset commission reduces the quantity, any is valued in quote."""
    quantity, fee = fact.quantity, fact.commission
    if fact.commission_asset == order.asset:
        quantity, fee = fact.quantity - fact.commission, fact.commission * fact.price
    elif fact.commission_asset != state.rules[order.asset].quote:
        fee = commission_value(state, fact, state.rules[order.asset].quote) or ZERO
    return Lot(lid, order.asset, order.symbol, fact.trade_id, order.id, order.batch_id,
               fact.price, quantity, fee, fact.ts)


def commission_value(state: State, fact: AssetOrderFilled, quote: str) -> Decimal | None:
    """A third-asset commission at that asset's best ask in ``quote``, if a book says."""
    rules, book = state.rules.get(fact.commission_asset), state.books.get(
        fact.commission_asset)
    if rules is None or rules.quote != quote or book is None or book.best_ask is None:
        return None
    return fact.commission * book.best_ask


def debit_commission(state: State, lot: Lot, fact: AssetOrderFilled) -> ev.CommissionDebited:
    value = commission_value(state, fact, state.rules[lot.asset].quote)
    held = state.fee_assets.setdefault(fact.commission_asset, FeeAsset())
    held.paid += fact.commission
    if value is None:
        held.unvalued += fact.commission
    return ev.CommissionDebited(lot.id, fact.commission_asset, fact.commission, value,
                                held.balance)


def fee_asset_funded(state: State, fact: FeeAssetFunded) -> Events:
    if fact.funding_id in state.fundings:
        return [ev.InputIgnored(f"fee asset funding {fact.funding_id} already credited")]
    if not _sane(fact.quantity):
        return [ev.InputIgnored(f"fee asset funding {fact.funding_id}: quantity out of "
                                "range")]
    state.fundings.add(fact.funding_id)
    held = state.fee_assets.setdefault(fact.asset, FeeAsset())
    held.funded += fact.quantity
    return [ev.FeeAssetCredited(fact.funding_id, fact.asset, fact.quantity, held.balance)]


def ended(state: State, fact: AssetOrderEnded) -> Events:
    order = state.asset_orders.get(fact.asset_order_id)
    if order is None:
        return [ev.InputIgnored(f"unknown asset order {fact.asset_order_id}")]
    if order.outcome is not None:
        return [ev.InputIgnored(f"asset order {order.id} already {order.outcome.value}")]
    if not _sane(fact.executed_quantity, ZERO):
        return [ev.InputIgnored(f"asset order {order.id}: executed quantity out of range")]
    order.end(fact.outcome, fact.executed_quantity, fact.reason)
    events: Events = [ev.AssetOrderClosed(order.id, fact.outcome, fact.executed_quantity,
                                          fact.reason)]
    return events + settle_if_done(state, state.batches[order.batch_id])


def _sane(value: Decimal, low: Decimal | None = None) -> bool:
    """Finite, below the amount bound, and above zero (or at least ``low``)."""
    if not value.is_finite() or value >= MAX_AMOUNT:
        return False
    return value >= low if low is not None else value > 0
