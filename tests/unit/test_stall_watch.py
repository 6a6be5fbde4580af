"""A stall is seen: orders that could be bought alone waiting while plan after plan finds no
batch, past the bound, are logged with their ids and the planner's reason and counted in
``solver_orders_stalled`` (the PlanningStalled alert's metric)."""

from __future__ import annotations

from structlog.testing import capture_logs

from solver.core import events as ev
from solver.core.bus import EventBus
from solver.core.commands import PlanBatch
from solver.core.fitting import Engagement
from solver.service.stall_watch import STALLED, StallWatch
from tests.support.builders import D

BOUND_MS = 60_000
REASON = "USDC: A2USDC: the orders' buy of 0 at 201.94 fails LOT_SIZE"


def publish(bus: EventBus, ts: int, *events: ev.Event) -> None:
    bus.publish(ev.Transaction(ts, ts, PlanBatch(ts), tuple(
        ev.Envelope(ts * 10 + n, ts, e) for n, e in enumerate(events))))


def test_a_stall_is_logged_with_the_orders_and_the_reason_and_counted() -> None:
    bus, waiting = EventBus(), {7, 3, 9}
    watch = StallWatch(bus, BOUND_MS, lambda: waiting)
    publish(bus, 1_000, ev.BatchNotPlanned(3, 2, REASON))
    publish(bus, 2_000, ev.BatchNotPlanned(3, 2, REASON))  # the stall runs from the first
    with capture_logs() as logs:
        watch.check(1_000 + BOUND_MS - 1)
        assert STALLED._value.get() == 0 and logs == []
        watch.check(1_000 + BOUND_MS)
        assert STALLED._value.get() == 2
        watch.check(1_000 + BOUND_MS + 1)  # said once per bound, not every check
    [said] = logs
    assert said["log_level"] == "error" and said["order_ids"] == [3, 7, 9]
    assert (said["buyable"], said["waiting"], said["reason"]) == (2, 3, REASON)
    publish(bus, 70_000, ev.BatchPlanned(1, (Engagement(3, D(1)),), (), ()))
    watch.check(80_000)
    assert STALLED._value.get() == 0 and watch.stalled_since is None


def test_orders_that_cannot_be_bought_alone_waiting_are_no_stall() -> None:
    bus = EventBus()
    watch = StallWatch(bus, BOUND_MS, lambda: {1})
    publish(bus, 1_000, ev.BatchNotPlanned(1, 0, "USDC: 1 priced out"))  # a limit below
    watch.check(1_000 + 10 * BOUND_MS)
    assert STALLED._value.get() == 0 and watch.stalled_since is None


def test_no_stall_once_nothing_waits() -> None:
    bus, waiting = EventBus(), {1}
    watch = StallWatch(bus, BOUND_MS, lambda: waiting)
    publish(bus, 1_000, ev.BatchNotPlanned(1, 1, REASON))
    waiting.clear()  # cancelled: no plan comes to say so
    watch.check(1_000 + BOUND_MS)
    assert STALLED._value.get() == 0
