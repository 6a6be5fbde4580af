"""Lots: every exchange fill, what was assigned from it to index orders, and what is left.

A lot is held by its batch until the batch settles; afterwards its unassigned quantity is free
inventory, consumed oldest first by later batches (which hold it while they are in flight).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

from solver.core.money import ZERO


@dataclass(frozen=True, slots=True)
class Lot:
    id: str
    asset: str
    symbol: str
    trade_id: str
    asset_order_id: int
    batch_id: int
    price: Decimal
    quantity: Decimal
    """Net of any commission paid in the asset itself."""
    fee: Decimal
    """The commission valued in the collateral asset."""
    ts: int


# Records made once per lot and per assignment are NamedTuples: immutable like the frozen
# dataclasses elsewhere, and several times cheaper to create on the settlement hot path.
class PoolSlice(NamedTuple):
    """Part of a lot available to a batch, with its share of the lot's fee."""

    id: str
    """The lot's."""
    price: Decimal
    quantity: Decimal
    fee: Decimal


Pooled = Lot | PoolSlice
"""A batch's own lots take part whole; held inventory, in slices."""


class Assignment(NamedTuple):
    """``quantity`` of a lot given to an index order when its batch settled."""

    lot_id: str
    order_id: int
    quantity: Decimal


def lot_id(symbol: str, trade_id: str) -> str:
    return f"{symbol}:{trade_id}"


TradeOrder = tuple[int, str, str]
"""A lot's place in the exchange's trade order, ending with the lot id."""


def _trade_order(lot: Lot) -> TradeOrder:
    """Exchange trade ids are numbers in text: order by length, then text."""
    return (len(lot.trade_id), lot.trade_id, lot.id)


class Inventory:
    def __init__(self) -> None:
        self._lots: dict[str, Lot] = {}
        self._unassigned: dict[str, Decimal] = {}
        self._assigned: dict[str, Decimal] = {}
        self._free: dict[str, Decimal] = {}
        self._queues: dict[str, list[TradeOrder]] = {}
        self._held: dict[int, list[tuple[str, Decimal]]] = {}
        self._new: dict[int, dict[str, list[TradeOrder]]] = {}
        self._of_order: dict[int, list[tuple[str, Decimal]]] = {}
        """What each order not yet minted was assigned, lot by lot: given back if the vault
        refuses its settlement for good."""

    # --- queries ---------------------------------------------------------------------------

    def lot(self, lot_id: str) -> Lot | None:
        return self._lots.get(lot_id)

    def lots(self) -> Iterable[Lot]:
        return self._lots.values()

    def unassigned(self, lot_id: str) -> Decimal:
        return self._unassigned[lot_id]

    def assigned(self, asset: str) -> Decimal:
        """All of ``asset`` ever assigned to index orders (each assignment is in its batch's
        ``BatchSettled`` event, hence in the journal)."""
        return self._assigned.get(asset, ZERO)

    def free_quantity(self, asset: str) -> Decimal:
        return sum((self._free[key[2]] for key in self._queues.get(asset, ())), ZERO)

    def positions(self) -> dict[str, Decimal]:
        """Unassigned quantity per asset: free, held by batches and not yet settled."""
        totals: dict[str, Decimal] = {}
        for lid, quantity in self._unassigned.items():
            asset = self._lots[lid].asset
            totals[asset] = totals.get(asset, ZERO) + quantity
        return totals

    # --- movements -------------------------------------------------------------------------

    def open(self, lot: Lot) -> None:
        """Record a fill; its batch holds it until it settles."""
        self._lots[lot.id] = lot
        self._unassigned[lot.id] = lot.quantity
        batch_lots = self._new.setdefault(lot.batch_id, {})
        batch_lots.setdefault(lot.asset, []).append(_trade_order(lot))

    def hold(self, batch_id: int, asset: str, quantity: Decimal) -> None:
        """Take ``quantity`` of free ``asset``, oldest lots first, for a batch in flight."""
        queue = self._queues.get(asset, [])
        held = self._held.setdefault(batch_id, [])
        while quantity > 0 and queue:
            lid = queue[0][2]
            take = min(quantity, self._free[lid])
            held.append((lid, take))
            self._free[lid] -= take
            quantity -= take
            if self._free[lid] == 0:
                heapq.heappop(queue)
        if quantity > 0:
            raise ValueError(f"hold {asset}: {quantity} more than free inventory")

    def pool(self, batch_id: int, asset: str) -> list[Pooled]:
        """What a settling batch can assign: held inventory first, then its own fills whole."""
        lots = self._lots
        held: list[Pooled] = [self._slice(lid, q) for lid, q in self._held.get(batch_id, ())
                              if lots[lid].asset == asset]
        return held + [lots[lid] for lid in self._new_lots(batch_id, asset)]

    def _new_lots(self, batch_id: int, asset: str) -> list[str]:
        """The batch's own lots of ``asset``, in exchange trade order."""
        keys = self._new.get(batch_id, {}).get(asset, [])
        keys.sort()
        return [lid for _, _, lid in keys]

    def settle(self, batch_id: int, assignments: Iterable[Assignment]) -> None:
        """Apply a batch's assignments and free whatever of its pools is left."""
        returned: dict[str, Decimal] = {}
        for lid, quantity in self._held.pop(batch_id, ()):
            returned[lid] = returned.get(lid, ZERO) + quantity
        unassigned, lots, assigned = self._unassigned, self._lots, self._assigned
        of_order = self._of_order
        for lid, order_id, quantity in assignments:
            unassigned[lid] -= quantity
            asset = lots[lid].asset
            assigned[asset] = assigned.get(asset, ZERO) + quantity
            of_order.setdefault(order_id, []).append((lid, quantity))
            if lid in returned:
                returned[lid] -= quantity
        freed = [_trade_order(self._lots[lid]) for lid, quantity in returned.items()
                 if self._make_free(lid, quantity)]
        free = self._free
        for keys in self._new.pop(batch_id, {}).values():
            for key in keys:  # a batch's own lots were never free before it settled
                left = unassigned[key[2]]
                if left > 0:
                    free[key[2]] = left
                    freed.append(key)
        self._enqueue(freed)

    def give_back(self, order_id: int) -> tuple[tuple[str, Decimal], ...]:
        """What the order was assigned becomes free inventory again (its mint was refused):
        each lot and how much of it."""
        freed = []
        given = tuple(self._of_order.pop(order_id, ()))
        for lid, quantity in given:
            self._unassigned[lid] += quantity
            asset = self._lots[lid].asset
            self._assigned[asset] -= quantity
            if self._make_free(lid, quantity):
                freed.append(_trade_order(self._lots[lid]))
        self._enqueue(freed)
        return given

    def final(self, order_id: int) -> None:
        """The order's assignments are final (minted, or too few units to mint): nothing of
        them will be given back."""
        self._of_order.pop(order_id, None)

    def _make_free(self, lid: str, quantity: Decimal) -> bool:
        """Add to the lot's free quantity; True if it was not free before (not queued)."""
        if quantity <= 0:
            return False
        was_free = self._free.get(lid, ZERO)
        self._free[lid] = was_free + quantity
        return was_free == 0

    def _enqueue(self, entries: list[TradeOrder]) -> None:
        """Queue lots oldest first in the exchange's own trade order, whatever order batches
        settle in."""
        by_asset: dict[str, list[TradeOrder]] = {}
        for entry in entries:
            by_asset.setdefault(self._lots[entry[2]].asset, []).append(entry)
        for asset, added in by_asset.items():
            queue = self._queues.setdefault(asset, [])
            if len(added) > len(queue):
                queue.extend(added)
                heapq.heapify(queue)
            else:
                for entry in added:
                    heapq.heappush(queue, entry)

    def _slice(self, lid: str, quantity: Decimal) -> PoolSlice:
        lot = self._lots[lid]
        fee = lot.fee if quantity == lot.quantity else lot.fee * quantity / lot.quantity
        return PoolSlice(lid, lot.price, quantity, fee)
