"""A stall is seen: orders waiting while no batch has been planned or is in flight, past the
bound, unless the planner said none of them can be bought, are logged with their ids and
the planner's reason and counted in ``solver_orders_stalled`` (the PlanningStalled alert's
metric); a stall in which no plan is even asked for is seen too."""

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


def stalled() -> float:
    return STALLED._value.get()


def test_a_stall_is_logged_with_the_orders_and_the_reason_and_counted() -> None:
    bus, waiting, in_flight = EventBus(), {7, 3, 9}, set[int]()
    watch = StallWatch(bus, BOUND_MS, lambda: waiting, lambda: in_flight)
    publish(bus, 1_000, ev.BatchNotPlanned(3, 2, REASON))
    with capture_logs() as logs:
        watch.check(1_000)
        watch.check(1_000 + BOUND_MS - 1)
        assert stalled() == 0 and logs == []
        watch.check(1_000 + BOUND_MS)
        assert stalled() == 3
        watch.check(1_000 + BOUND_MS + 1)  # said once per bound, not every check
    [said] = logs
    assert said["log_level"] == "error" and said["order_ids"] == [3, 7, 9]
    assert (said["waiting"], said["reason"]) == (3, REASON)
    publish(bus, 70_000, ev.BatchPlanned(1, (Engagement(3, D(1)),), (), ()))
    in_flight.add(1)
    watch.check(80_000 + BOUND_MS)
    assert stalled() == 0 and watch.stalled_since is None


def test_a_stall_without_any_plan_asked_for_is_seen() -> None:
    bus = EventBus()
    watch = StallWatch(bus, BOUND_MS, lambda: {1}, set)
    with capture_logs() as logs:
        watch.check(0)
        watch.check(BOUND_MS)
    assert stalled() == 1
    assert logs[0]["reason"] == "no plan was asked for since the last batch"


def test_orders_the_planner_says_cannot_be_bought_now_are_no_stall() -> None:
    bus = EventBus()
    watch = StallWatch(bus, BOUND_MS, lambda: {1}, set)
    publish(bus, 1_000, ev.BatchNotPlanned(1, 0, "1 priced out"))  # a limit below the market
    watch.check(1_000)
    watch.check(1_000 + 10 * BOUND_MS)
    assert stalled() == 0


def test_no_stall_while_a_batch_is_in_flight_or_once_nothing_waits() -> None:
    bus, waiting, in_flight = EventBus(), {1}, {4}
    watch = StallWatch(bus, BOUND_MS, lambda: waiting, lambda: in_flight)
    watch.check(0)
    watch.check(BOUND_MS)
    assert stalled() == 0  # a batch in doubt is the settlement watch's
    in_flight.clear()
    watch.check(BOUND_MS)
    waiting.clear()  # cancelled: no plan comes to say so
    watch.check(2 * BOUND_MS)
    assert stalled() == 0
