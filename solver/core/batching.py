"""A plan asked for: finish what prices now complete, choose the next batch
(``planning.choose_batch``), start it (its orders engaged, its inventory held, its asset
orders asked for), and bound the waits of what it left."""

from __future__ import annotations

from solver.core import events as ev
from solver.core.actions import IndexPrices, complete_if_done
from solver.core.allocation import min_fill_value
from solver.core.batches import AssetOrder, Batch
from solver.core.commands import PlanBatch
from solver.core.fitting import BatchPlan, Candidate
from solver.core.model import Side
from solver.core.orders import IndexOrder
from solver.core.planning import Unplanned, choose_batch
from solver.core.settlement import bound_waits, settle_if_done
from solver.core.state import Events, State


def plan(state: State, cmd: PlanBatch) -> Events:
    # Prices move: a filled order may have been left unable to buy a step since it settled.
    events: Events = []
    prices: IndexPrices = {}
    for filled in [o for o in state.open.values() if o.is_ready and o.filled_units]:
        events += complete_if_done(state, filled, prices)
    ready = [o for o in state.open.values() if o.is_ready]
    plan = choose(state, ready)
    batch = None if isinstance(plan, Unplanned) else start(state, plan, cmd.ts, events)
    # What the plan did not take, and cannot be bought alone, waits for company so long.
    events += bound_waits(state, [o for o in ready if o.is_ready], cmd.ts)
    if batch is None:
        assert isinstance(plan, Unplanned)
        waiting = sum(1 for o in ready if o.is_ready)
        return [*events, ev.BatchNotPlanned(waiting, plan.buyable, plan.reason)]
    return events + settle_if_done(state, batch)


def choose(state: State, ready: list[IndexOrder]) -> BatchPlan | Unplanned:
    """The next batch of the ready orders (``planning.choose_batch``); changes nothing."""
    candidates = [Candidate(o.id, state.indexes[o.index], o.remaining,
                            o.price_bound(state.params.fee_reserve))
                  for o in ready]
    assets = {a for symbol in {o.index for o in ready} for a in state.indexes[symbol].assets}
    free = {a: state.inventory.free_quantity(a) for a in assets}
    room = state.params.max_inflight_notional - state.inflight_notional()
    smallest = {a: min_fill_value(state.collaterals[a].decimals)
                for a in {o.collateral_asset for o in ready}}
    return choose_batch(candidates, state.markets(), free, state.params, room, smallest,
                        state.last_served)


def start(state: State, plan: BatchPlan, ts: int, events: Events) -> Batch:
    """Engage the plan's orders and hold its inventory in a new batch; ask for its asset
    orders (appended to ``events``)."""
    batch = Batch(len(state.batches) + 1, ts, {e.order_id: e.units for e in plan.engagements},
                  dict(plan.index_prices), dict(plan.inventory_used))
    state.batches[batch.id] = batch
    state.last_served.update(dict.fromkeys(plan.index_prices, batch.id))
    for order_id in batch.engagements:
        state.orders[order_id].engage(batch.id)
    for asset, quantity in plan.inventory_used.items():
        state.inventory.hold(batch.id, asset, quantity)
    events.append(ev.BatchPlanned(batch.id, plan.engagements,
                                  tuple(sorted(plan.index_prices.items())),
                                  tuple(sorted(plan.inventory_used.items()))))
    for planned in plan.asset_orders:
        number = len(state.asset_orders) + 1
        order = AssetOrder(number, f"{state.client_order_prefix}-{number}", batch.id,
                           planned.asset, planned.symbol, Side.BUY, planned.price,
                           planned.quantity)
        state.asset_orders[order.id] = order
        batch.asset_order_ids.append(order.id)
        events.append(order.requested())
    return batch
