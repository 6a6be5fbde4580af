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
- For a collateral, all its orders are tried together first. If that does not engage its
  oldest order that can be bought alone, that order's index's orders are tried, then that
  order alone; if neither engages it either, it cannot be bought now and the plan of all
  goes on without it. If all together give nothing, each index's orders (and its oldest
  order alone) are tried, the indexes by their oldest orders; when none gives a plan, the
  next collateral is tried. So an order that can be bought alone is engaged as soon as it is
  the oldest of its collateral, whatever the others need, and no order waits behind one that
  cannot be bought.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import partial

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
    within_limit,
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
    """One collateral's orders: buyable alone (oldest first), then remainders (largest
    first)."""

    buyable: list[Candidate]
    remainders: list[Candidate]

    @property
    def oldest(self) -> int:
        """The order id that sets this collateral's turn."""
        return (self.buyable or self.remainders)[0].order_id

    def by_index(self) -> list[tuple[Candidate, list[Candidate]]]:
        """Each index's orders (buyable first), with its oldest order that can be bought
        alone (else its oldest), the indexes by that order."""
        orders: dict[str, list[Candidate]] = {}
        for c in self.buyable + self.remainders:
            orders.setdefault(c.index.symbol, []).append(c)
        return sorted(((group[0], group) for group in orders.values()),
                      key=lambda pair: (pair[0] not in self.buyable, pair[0].order_id))


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
        fit = partial(plan_batch, markets=markets, free_inventory=free_inventory,
                      params=params, room=room,
                      smallest_fill=smallest_fills.get(collateral, ZERO))
        plan = _first_served(orders, fit)
        if isinstance(plan, BatchPlan):
            return plan
        reasons.append(f"{collateral}: {plan.reason}")
    buyable = sum(len(orders.buyable) for orders in collaterals.values())
    if priced_out:
        reasons.append(f"{priced_out} priced out (no ask for an asset, an index price above "
                       "the order's max price, or less than one unit left)")
    return Unplanned(buyable, "; ".join(reasons) or "no order waits")


def _first_served(orders: _Sorted,
                  fit: Callable[[list[Candidate]], BatchPlan | NoBatch]) -> BatchPlan | NoBatch:
    """The plan for one collateral's orders: all of them, if that engages its oldest order
    that can be bought alone; else the first of that order's index's orders and that order
    alone that does; else the plan of all of them. If all together give nothing, the first
    index's orders (or its oldest order alone) that give a plan."""
    everyone = orders.buyable + orders.remainders
    whole = fit(everyone)
    first = orders.buyable[0] if orders.buyable else None
    if isinstance(whole, BatchPlan) and (first is None or _engages(whole, first)):
        return whole
    for oldest, group in orders.by_index():
        tries = ([group] if len(group) < len(everyone) else []) + (
            [[oldest]] if len(group) > 1 and oldest in orders.buyable else [])
        for chosen in tries:
            plan = fit(chosen)
            if isinstance(plan, BatchPlan) and (isinstance(whole, NoBatch)
                                                or _engages(plan, oldest)):
                return plan
        if isinstance(whole, BatchPlan):
            return whole  # its oldest cannot be bought now: the others go on without it
    return whole


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
        if price is None or not within_limit(c, price):
            priced_out += 1
        elif can_be_bought_alone(c.remaining, least, params):  # then it can be engaged
            collaterals.setdefault(c.index.collateral, _Sorted([], [])).buyable.append(c)
        elif can_be_engaged(c.index, c.remaining, price, params, smallest):
            collaterals.setdefault(c.index.collateral, _Sorted([], [])).remainders.append(c)
        else:
            priced_out += 1
    for orders in collaterals.values():  # the largest remainders pass the minimums soonest
        orders.remainders.sort(key=lambda c: (-c.remaining, c.order_id))
    return collaterals, priced_out


def _price_and_least(index: Index, markets: Mapping[str, Market], params: SolverParams,
                     smallest: Decimal) -> tuple[Decimal | None, Decimal | None]:
    return (limit_price(index, markets, params),
            smallest_buy_cost(index, markets, params, smallest))

