"""The position store: what each account holds of each index, and the solver's own inventory.

A bus consumer that commits at transaction boundaries: while a transaction's events arrive it
updates private copies, and when the transaction ends it publishes a new immutable
``PositionsView``. Readers always get a complete view as of one transaction, never half of one.

- Holdings, per (account, index): units filled, collateral paid (fees included) and the fees.
- Inventory, per asset: quantity held by the solver, its cost basis at the exchange prices paid
  (commissions kept apart in ``fees``), and realised PnL: what orders were charged for the
  quantity they took (the batch's VWAP) less its average cost.

Unrealised PnL needs marks (index or asset prices) and is computed on request. The store holds
only what it folded from the events, so it is checkpointed with the engine's snapshots; after a
restart it is the checkpoint fed the transactions since (``Runtime.resume``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from types import MappingProxyType
from typing import Any, ClassVar

from solver.core import events as ev
from solver.core.model import Index
from solver.core.money import CONTEXT, ZERO, exact


@dataclass(frozen=True, slots=True)
class Position:
    quantity: Decimal = ZERO
    cost: Decimal = ZERO
    fees: Decimal = ZERO
    realised: Decimal = ZERO

    @property
    def average_cost(self) -> Decimal:
        return CONTEXT.divide(self.cost, self.quantity) if self.quantity else ZERO

    def unrealised(self, mark: Decimal) -> Decimal:
        return self.quantity * mark - self.cost


@dataclass(frozen=True, slots=True)
class PositionsView:
    transaction: int
    """The last transaction this view includes."""
    holdings: Mapping[tuple[str, str], Position] = field(default_factory=dict)
    inventory: Mapping[str, Position] = field(default_factory=dict)

    def unrealised(self, marks: Mapping[str, Decimal]) -> dict[str, Decimal]:
        """Unrealised PnL per key (``account/index`` or asset) that has a mark."""
        found = {f"{a}/{i}": p.unrealised(marks[i])
                 for (a, i), p in self.holdings.items() if i in marks}
        found.update({a: p.unrealised(marks[a]) for a, p in self.inventory.items() if a in marks})
        return found


class PositionStore:
    NAME: ClassVar[str] = "positions"
    """What it is checkpointed under with the engine's snapshots (``Runtime.resume``)."""

    def __init__(self, indexes: Mapping[str, Index]) -> None:
        self._indexes = indexes
        self._view = PositionsView(0, MappingProxyType({}), MappingProxyType({}))
        self._holdings: dict[tuple[str, str], Position] = {}
        self._inventory: dict[str, Position] = {}
        self._owners: dict[int, tuple[str, str]] = {}
        self._vwaps: dict[int, dict[str, Decimal]] = {}

    def view(self) -> PositionsView:
        """The positions as of the last completed transaction."""
        return self._view

    # --- transaction boundaries ------------------------------------------------------------

    def transaction_began(self, transaction: ev.Transaction) -> None:
        pass

    def transaction_ended(self, transaction: ev.Transaction) -> None:
        self._holdings = dict(self._view.holdings)
        self._inventory = dict(self._view.inventory)
        for envelope in transaction.events:
            handler = _HANDLERS.get(type(envelope.event))
            if handler is not None:
                handler(self, envelope.event)
        self._view = PositionsView(transaction.number, MappingProxyType(self._holdings),
                                   MappingProxyType(self._inventory))

    # --- events ----------------------------------------------------------------------------

    def _accepted(self, e: ev.IndexOrderAccepted) -> None:
        self._owners[e.order_id] = (e.account, e.index)

    @exact
    def _lot(self, e: ev.LotOpened) -> None:
        p = self._inventory.get(e.asset, Position())
        self._inventory[e.asset] = replace(p, quantity=p.quantity + e.quantity,
                                           cost=p.cost + e.price * e.quantity,
                                           fees=p.fees + e.fee)

    def _settled(self, e: ev.BatchSettled) -> None:
        self._vwaps[e.batch_id] = dict(e.vwaps)

    @exact
    def _filled(self, e: ev.IndexOrderFilled) -> None:
        key = self._owners.get(e.order_id)
        if key is None:  # accepted before the journal this store was fed began
            return
        h = self._holdings.get(key, Position())
        self._holdings[key] = replace(h, quantity=h.quantity + e.units, cost=h.cost + e.cost,
                                      fees=h.fees + e.fees)
        vwaps = self._vwaps.get(e.batch_id, {})
        for c in self._indexes[key[1]].constituents:
            taken = c.quantity * e.units
            p = self._inventory.get(c.asset, Position())
            basis = p.average_cost * taken
            charged = vwaps.get(c.asset, p.average_cost) * taken
            self._inventory[c.asset] = replace(p, quantity=p.quantity - taken,
                                               cost=p.cost - basis,
                                               realised=p.realised + charged - basis)


_HANDLERS: dict[type[ev.Event], Callable[[PositionStore, Any], None]] = {
    ev.IndexOrderAccepted: PositionStore._accepted,
    ev.LotOpened: PositionStore._lot,
    ev.BatchSettled: PositionStore._settled,
    ev.IndexOrderFilled: PositionStore._filled,
}
