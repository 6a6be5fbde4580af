"""Choosing the next batch: which of the orders waiting are planned together, so that every
order that can be bought is bought and none blocks another.

``fitting.plan_batch`` fits one set of orders to the books; this module chooses the sets:

- An order *priced out* (no ask for an asset of its index, an index price above its max
  price, or a remainder too small for one unit) is left out, so it never blocks another.
- An order is *buyable alone* when its remaining collateral buys its index's smallest
  tradable quantity on its own within the caps on one order in one batch
  (``fitting.can_be_bought_alone``). The others are remainders: together with other orders
  of their index they may still pass the exchange's minimums, so they ride along, but only
  in the slots (``max_orders_per_batch``) the buyable orders leave, the largest first
  (together they pass the minimums soonest; what no batch can buy ends after
  ``completion_wait_ms``, ``settlement.bound_waits``).
- A batch has one collateral (its orders are charged and rounded in it). Collaterals, and
  the indexes of a collateral, take turns: the one served least recently first (by the last
  batch that engaged an order of it), then by its oldest order. Within an index, first come
  is first served.
- For the collateral whose turn it is, all its orders are tried together first. If that does
  not engage the *lead* (the oldest buyable order of the index whose turn it is), the lead's
  index's orders are tried, then the lead alone; if neither engages it, it cannot be bought
  now and the plan of all goes on without it. If all together give nothing, each index's
  orders (and its lead alone) are tried in turn; when none gives a plan, the next collateral
  is tried. So an order that can be bought alone is engaged at its index's turn, whatever the
  other orders need, and one order that cannot be bought blocks no other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
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
from solver.core.money import ZERO, exact
from solver.core.params import SolverParams

NEVER = -1
"""The last batch of an index no batch has served."""

Fit = Callable[[list[Candidate]], BatchPlan | NoBatch]


@dataclass(frozen=True, slots=True)
class Unplanned:
    """No batch: how many orders could be bought alone at their limits, and why none was."""

    buyable: int
    reason: str


@dataclass(slots=True)
class _IndexQueue:
    """One index's orders waiting: buyable alone (oldest first), then remainders (largest
    first, once ``sort_remainders`` has run)."""

    symbol: str
    last_served: int
    buyable: list[Candidate] = field(default_factory=list)
    remainders: list[Candidate] = field(default_factory=list)

    @property
    def lead(self) -> Candidate | None:
        """The order whose turn it is: the oldest that can be bought alone."""
        return self.buyable[0] if self.buyable else None

    @property
    def orders(self) -> list[Candidate]:
        return self.buyable + self.remainders

    def turn(self) -> tuple[bool, int, int]:
        """Buyable orders first, then the least recently served, then the oldest order."""
        return not self.buyable, self.last_served, self.orders[0].order_id


@dataclass(slots=True)
class _CollateralQueue:
    """One collateral's indexes, in turn."""

    collateral: str
    indexes: list[_IndexQueue] = field(default_factory=list)

    @property
    def lead(self) -> Candidate | None:
        return self.indexes[0].lead

    @property
    def buyable(self) -> int:
        return sum(len(i.buyable) for i in self.indexes)

    def orders(self) -> list[Candidate]:
        """Every order: the buyable ones first come, then the remainders largest first."""
        buyable = sorted((c for i in self.indexes for c in i.buyable), key=_oldest)
        remainders = sorted((c for i in self.indexes for c in i.remainders), key=_largest)
        return buyable + remainders

    def turn(self) -> tuple[bool, int, int]:
        first = self.indexes[0].turn()
        return first[0], max(i.last_served for i in self.indexes), first[2]


@exact
def choose_batch(
    candidates: Sequence[Candidate],
    markets: Mapping[str, Market],
    free_inventory: Mapping[str, Decimal],
    params: SolverParams,
    room: Decimal,
    smallest_fills: Mapping[str, Decimal],
    last_served: Mapping[str, int] | None = None,
) -> BatchPlan | Unplanned:
    """The next batch of ``candidates`` (oldest first), all of one collateral; or why there
    is none. ``smallest_fills``: per collateral, the least value a fill may have;
    ``last_served``: per index, the last batch that engaged an order of it."""
    queues, priced_out = _queues(candidates, markets, params, smallest_fills,
                                 last_served or {})
    reasons = []
    for queue in queues:
        fit = partial(plan_batch, markets=markets, free_inventory=free_inventory,
                      params=params, room=room,
                      smallest_fill=smallest_fills.get(queue.collateral, ZERO))
        plan = _first_served(queue, fit)
        if isinstance(plan, BatchPlan):
            return plan
        reasons.append(f"{queue.collateral}: {plan.reason}")
    if priced_out:
        reasons.append(f"{priced_out} priced out (no ask for an asset, an index price above "
                       "the order's max price, or less than one unit left)")
    return Unplanned(sum(q.buyable for q in queues), "; ".join(reasons) or "no order waits")


def _first_served(queue: _CollateralQueue, fit: Fit) -> BatchPlan | NoBatch:
    """The plan for one collateral's orders: all of them, if that engages its lead; else the
    lead's index's orders or the lead alone, if either does; else the plan of all of them.
    If all together give nothing, the first index's orders (or its lead alone), in turn,
    that give a plan."""
    everyone = queue.orders()
    whole = fit(everyone)
    if isinstance(whole, BatchPlan) and (queue.lead is None or _engages(whole, queue.lead)):
        return whole
    for index in queue.indexes:
        for chosen in _smaller_sets(index, len(everyone)):
            plan = fit(chosen)
            if isinstance(plan, NoBatch):
                continue
            if isinstance(whole, NoBatch) or (index.lead and _engages(plan, index.lead)):
                return plan
        if isinstance(whole, BatchPlan):
            return whole  # the lead cannot be bought now: the others go on without it
    return whole


def _smaller_sets(index: _IndexQueue, everyone: int) -> Iterator[list[Candidate]]:
    """The index's orders (if not all of the collateral's), then its lead alone (if it has
    company)."""
    orders = index.orders
    if len(orders) < everyone:
        yield orders
    if index.lead is not None and len(orders) > 1:
        yield [index.lead]


def _engages(plan: BatchPlan, order: Candidate) -> bool:
    return any(e.order_id == order.order_id for e in plan.engagements)


def _queues(candidates: Sequence[Candidate], markets: Mapping[str, Market],
            params: SolverParams, smallest_fills: Mapping[str, Decimal],
            last_served: Mapping[str, int]) -> tuple[list[_CollateralQueue], int]:
    """The candidates by collateral and index, each in turn; and how many are priced out."""
    indexes: dict[str, _IndexQueue] = {}
    costs: dict[str, tuple[Decimal | None, Decimal | None]] = {}
    priced_out = 0
    for c in candidates:
        symbol, smallest = c.index.symbol, smallest_fills.get(c.index.collateral, ZERO)
        if symbol not in costs:
            costs[symbol] = (limit_price(c.index, markets, params),
                             smallest_buy_cost(c.index, markets, params, smallest))
        price, least = costs[symbol]
        queue = indexes.get(symbol) or indexes.setdefault(
            symbol, _IndexQueue(symbol, last_served.get(symbol, NEVER)))
        if price is None or not within_limit(c, price):
            priced_out += 1
        elif can_be_bought_alone(c.remaining, least, params):  # then it can be engaged
            queue.buyable.append(c)
        elif can_be_engaged(c.index, c.remaining, price, params, smallest):
            queue.remainders.append(c)
        else:
            priced_out += 1
    collaterals: dict[str, _CollateralQueue] = {}
    for queue in sorted((q for q in indexes.values() if q.orders), key=_IndexQueue.turn):
        queue.remainders.sort(key=_largest)  # the largest pass the minimums soonest
        collateral = queue.orders[0].index.collateral
        collaterals.setdefault(collateral, _CollateralQueue(collateral)).indexes.append(queue)
    return sorted(collaterals.values(), key=_CollateralQueue.turn), priced_out


def _oldest(c: Candidate) -> int:
    return c.order_id


def _largest(c: Candidate) -> tuple[Decimal, int]:
    return -c.remaining, c.order_id
