"""The conservation laws of the architecture, checked against an engine's state."""

from __future__ import annotations

from decimal import Decimal

from solver.core.engine import Engine
from solver.core.model import asset_quantities
from solver.core.money import ZERO, exact, plain
from solver.core.orders import MintStatus


@exact
def violations(engine: Engine) -> list[str]:
    """Every broken law, in words; an empty list when all hold."""
    return (engine.ledger.violations() + _reservations(engine) + _orders(engine)
            + _assets(engine) + _filters(engine) + _fee_assets(engine) + _withdrawals(engine))


def _withdrawals(engine: Engine) -> list[str]:
    """Collateral set aside is exactly what pending withdrawals hold, never more than asked."""
    aside: dict[tuple[str, str], Decimal] = {}
    found = []
    for w in engine.custody.withdrawals.values():
        if not ZERO <= w.set_aside <= w.requested:
            found.append(f"withdrawal {w.request_id}: set aside {w.set_aside} outside "
                         f"[0, {w.requested}]")
        if w.account is not None:
            aside[(w.account, w.asset)] = aside.get((w.account, w.asset), ZERO) + w.set_aside
    return found + [f"account {a} {asset}: withdrawing {b.withdrawing} != withdrawals' {want}"
                    for (a, asset), b in engine.ledger.balances().items()
                    if b.withdrawing != (want := aside.get((a, asset), ZERO))]


def _reservations(engine: Engine) -> list[str]:
    """Reserved collateral is exactly what open orders have not spent."""
    open_remaining: dict[tuple[str, str], Decimal] = {}
    for o in engine.open_orders():
        key = (o.account, o.collateral_asset)
        open_remaining[key] = open_remaining.get(key, ZERO) + o.remaining
    return [f"account {a} {asset}: reserved {b.reserved} != open orders' {want}"
            for (a, asset), b in engine.ledger.balances().items()
            if b.reserved != (want := open_remaining.get((a, asset), ZERO))]


def _orders(engine: Engine) -> list[str]:
    found = []
    for o in engine.orders.values():
        name = f"order {o.account}/{o.client_order_id}"
        if not ZERO <= o.spent <= o.collateral:
            found.append(f"{name}: spent {o.spent} outside [0, {o.collateral}]")
        if o.fees > o.spent:
            found.append(f"{name}: fees {o.fees} exceed spent {o.spent}")
        if not o.is_open and o.spent + o.released != o.collateral:
            found.append(f"{name}: spent + released != collateral {o.collateral}")
        if o.minted_units > o.filled_units:
            found.append(f"{name}: minted {o.minted_units} > filled {o.filled_units}")
        if o.is_open and o.mint_status is not MintStatus.NONE:
            found.append(f"{name}: mint requested while open")
    return found


def _assets(engine: Engine) -> list[str]:
    """Per asset: filled (net) = assigned to index orders + inventory."""
    filled: dict[str, Decimal] = {}
    for lot in engine.inventory.lots():
        filled[lot.asset] = filled.get(lot.asset, ZERO) + lot.quantity
    assigned = {asset: engine.inventory.assigned(asset) for asset in filled}
    by_orders = asset_quantities((engine.indexes[o.index], o.filled_units)
                                 for o in engine.orders.values())
    inventory = engine.inventory.positions()
    found = []
    for asset in sorted(set(filled) | set(by_orders)):
        f, a, i = filled.get(asset, ZERO), assigned.get(asset, ZERO), inventory.get(asset, ZERO)
        if f != a + i or i < 0:
            found.append(f"asset {asset}: filled {f} != assigned {a} + inventory {i}")
        if a != by_orders.get(asset, ZERO):
            found.append(f"asset {asset}: lots assigned {a} != orders' units x quantities "
                         f"{by_orders.get(asset, ZERO)}")
    return found


def _filters(engine: Engine) -> list[str]:
    """Every asset order requested passes its market's exchange filters."""
    found = []
    for order in engine.asset_orders.values():
        failure = engine.rules[order.asset].filter_failure(order.price, order.quantity)
        if failure:
            found.append(f"asset order {order.client_order_id} {order.symbol}: "
                         f"Filter failure: {failure}")
    return found


def _fee_assets(engine: Engine) -> list[str]:
    """The exchange cannot take commission the house does not hold: a balance below zero
    means a funding was never recorded."""
    return [f"fee asset {asset}: commissions paid {plain(held.paid)} exceed its funding "
            f"{plain(held.funded)} (fund it)"
            for asset, held in sorted(engine.fee_assets.items()) if held.balance < 0]
