"""Choosing the next batch: which of the orders waiting are planned together, so that every
order that can be bought is bought and none blocks another.

``fitting.plan_batch`` fits one set of orders to the books; this module chooses the sets:

- An order *priced out* (no ask for an asset of its index, an index price above its max
  price, or a remainder too small for one unit) is left out, so it never blocks another.
- An order is *buyable alone* when its remaining collateral buys its index's smallest
  tradable quantity on its own (``fitting.smallest_buy_cost``) within the caps on one order
  in one batch (``fitting.within_caps``). The others are remainders:
  together with other orders of their index they may still pass the exchange's minimums, so
  they ride along, but only in the slots (``max_orders_per_batch``) the buyable orders leave.
- A batch has one collateral (its orders are charged and rounded in it). The collaterals
  take turns by their oldest buyable order, so first come is first served across them.
- For a collateral, the sets tried are: all its orders; the orders of the index of its
  oldest buyable order; that order alone. The first plan that engages its oldest buyable
  order is taken, else the first that engages anyone; when none does, the next collateral
  is tried. So an order that can be bought alone is engaged as soon as it is the oldest of
  its collateral, whatever the others need: no order waits behind one that cannot be bought.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from solver.core.fitting import (
    BatchPlan,
    Candidate,
    Market,
    NoBatch,
    can_be_bought_alone,
    can_be_engaged,
    limit_price,
    plan_batch,
    smallest_buy_cost,
)
from solver.core.model import Index
from solver.core.money import ZERO, exact
from solver.core.params import SolverParams


@dataclass(frozen=True, slots=True)
class Unplanned:
    """No batch: how many orders could be bought alone at their limits, and why none was."""

    buyable: int
    reason: str


@dataclass(frozen=True, slots=True)
class _Sorted:
    """One collateral's orders: buyable alone first, then remainders, each oldest first."""

    buyable: list[Candidate]
    remainders: list[Candidate]

    @property
    def oldest(self) -> int:
        """The order id that sets this collateral's turn."""
        return (self.buyable or self.remainders)[0].order_id

    def sets(self) -> Iterator[list[Candidate]]:
        """The sets of orders to try, largest first."""
        everyone = self.buyable + self.remainders
        yield everyone
        if not self.buyable:  # remainders only: each index's may pass the minimums alone
            by_index: dict[str, list[Candidate]] = {}
            for c in everyone:
                by_index.setdefault(c.index.symbol, []).append(c)
            if len(by_index) > 1:
                yield from by_index.values()
            return
        first = self.buyable[0]
        same_index = [c for c in everyone if c.index.symbol == first.index.symbol]
        if len(same_index) < len(everyone):
            yield same_index
        if len(same_index) > 1:
            yield [first]


@exact
def choose_batch(
    candidates: Sequence[Candidate],
    markets: Mapping[str, Market],
    free_inventory: Mapping[str, Decimal],
    params: SolverParams,
    room: Decimal,
    smallest_fills: Mapping[str, Decimal],
) -> BatchPlan | Unplanned:
    """The next batch of ``candidates`` (oldest first), all of one collateral; or why there
    is none. ``smallest_fills``: per collateral, the least value a fill may have."""
    collaterals, priced_out = _sort(candidates, markets, params, smallest_fills)
    reasons = []
    for collateral, orders in sorted(collaterals.items(), key=_turn):
        smallest = smallest_fills.get(collateral, ZERO)
        found: BatchPlan | None = None
        why: NoBatch | None = None
        for chosen in orders.sets():
            plan = plan_batch(chosen, markets, free_inventory, params, room, smallest)
            if isinstance(plan, NoBatch):
                why = why or plan
                continue
            if not orders.buyable or _engages(plan, orders.buyable[0]):
                return plan
            found = found or plan
        if found is not None:
            return found
        reasons.append(f"{collateral}: {why.reason if why else 'nothing to plan'}")
    buyable = sum(len(orders.buyable) for orders in collaterals.values())
    if priced_out:
        reasons.append(f"{priced_out} priced out (no ask for an asset, an index price above "
                       "the order's max price, or less than one unit left)")
    return Unplanned(buyable, "; ".join(reasons) or "no order waits")


def _turn(item: tuple[str, _Sorted]) -> tuple[bool, int]:
    """Collaterals with an order buyable alone first, each by its oldest order."""
    return not item[1].buyable, item[1].oldest


def _engages(plan: BatchPlan, order: Candidate) -> bool:
    return any(e.order_id == order.order_id for e in plan.engagements)


def _sort(candidates: Sequence[Candidate], markets: Mapping[str, Market],
          params: SolverParams, smallest_fills: Mapping[str, Decimal],
          ) -> tuple[dict[str, _Sorted], int]:
    """The candidates by collateral, buyable alone or remainders; and how many are priced
    out."""
    costs: dict[str, tuple[Decimal | None, Decimal | None]] = {}
    collaterals: dict[str, _Sorted] = {}
    priced_out = 0
    for c in candidates:
        smallest = smallest_fills.get(c.index.collateral, ZERO)
        if c.index.symbol not in costs:
            costs[c.index.symbol] = _price_and_least(c.index, markets, params, smallest)
        price, least = costs[c.index.symbol]
        if price is None or price <= 0 or (c.max_price is not None and price > c.max_price) \
                or not can_be_engaged(c.index, c.remaining, price, params, smallest):
            priced_out += 1
            continue
        orders = collaterals.setdefault(c.index.collateral, _Sorted([], []))
        if can_be_bought_alone(c.remaining, least, params):
            orders.buyable.append(c)
        else:
            orders.remainders.append(c)
    return collaterals, priced_out


def _price_and_least(index: Index, markets: Mapping[str, Market], params: SolverParams,
                     smallest: Decimal) -> tuple[Decimal | None, Decimal | None]:
    return (limit_price(index, markets, params),
            smallest_buy_cost(index, markets, params, smallest))

