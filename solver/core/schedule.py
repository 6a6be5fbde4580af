"""What time brings: orders' expiries, the end of a remainder's wait for company, mints'
retries; when it next brings something."""

from __future__ import annotations

from solver.core import minting
from solver.core.actions import end_order
from solver.core.commands import ClockTicked
from solver.core.orders import IndexOrder, OrderState, OrderStatus
from solver.core.settlement import bound_waits
from solver.core.state import Events, State


def is_due(state: State, now: int) -> bool:
    """Whether time ``now`` brings something (``next_due``): a ``ClockTicked`` that brings
    nothing changes nothing."""
    due = next_due(state)
    return due is not None and due <= now


def next_due(state: State) -> int | None:
    """The earliest time that brings an order's expiry, the end of a remainder's wait or
    a mint's retry; None while nothing waits for time."""
    times = [t for o in state.open.values() for t in (
        o.expire_at if o.state is not OrderState.ENDING else None,
        o.waits_until if o.is_ready else None) if t is not None]
    times += [t for o in minting.failed_mints(state) if (t := o.mint_retry_at) is not None]
    return min(times, default=None)


def expiring(state: State, now: int) -> list[IndexOrder]:
    return [o for o in state.open.values() if o.expire_at is not None
            and o.expire_at <= now and o.state is not OrderState.ENDING]


def waited(state: State, now: int) -> list[IndexOrder]:
    return [o for o in state.open.values() if o.is_ready and o.waits_until is not None
            and o.waits_until <= now]


def tick(state: State, fact: ClockTicked) -> Events:
    events: Events = []
    for order in expiring(state, fact.ts):
        events += end_order(state, order, OrderStatus.EXPIRED,
                                  reason="expired: its expiry time passed")
    events += bound_waits(state, waited(state, fact.ts), fact.ts)
    return events + minting.retries_due(state, fact.ts)
