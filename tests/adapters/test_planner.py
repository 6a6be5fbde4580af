"""The planner plans as orders arrive: after a gathering window when nothing is in flight, at
once when a batch settles and orders wait, and never while a plan is on its way."""

import asyncio
from collections.abc import Awaitable, Callable

from solver.core import events as ev
from solver.core.bus import EventBus
from solver.core.commands import (
    AssetOrderEnded,
    AssetOrderFilled,
    AssetOrderOutcome,
    CancelIndexOrder,
)
from solver.core.money import ZERO
from solver.service.planner import Planner
from tests.support.builders import D, Desk, desk

GATHER_MS = 100  # wide enough that a busy machine cannot outrun it
HOLD_MS = 5_000


class Stand:
    """A desk whose transactions reach a planner through a bus; the plans it asks for are
    counted (and applied only when the test says)."""

    def __init__(self) -> None:
        self.desk: Desk = desk()
        self.desk.deposit("alice", "100000")
        self.bus = EventBus()
        self.asked = 0
        self.planner = Planner(self.bus, self._ask, GATHER_MS, lambda: self.desk.now, HOLD_MS)

    def _ask(self) -> None:
        self.asked += 1

    def order(self, name: str, amount: str = "1000", **terms: object) -> None:
        self.bus.publish(self.desk.order("alice", name, amount, **terms))

    def plan(self) -> list[ev.AssetOrderRequested]:
        transaction = self.desk.plan()
        self.bus.publish(transaction)
        return list(transaction.of_type(ev.AssetOrderRequested))

    def fill(self, requests: list[ev.AssetOrderRequested]) -> None:
        for r in requests:
            self.bus.publish(self.desk.apply(AssetOrderFilled, r.asset_order_id,
                                             f"t{r.asset_order_id}", r.price, r.quantity,
                                             ZERO, "USDC"))
            self.bus.publish(self.desk.apply(AssetOrderEnded, r.asset_order_id,
                                             AssetOrderOutcome.FILLED, r.quantity))


async def until(condition: Callable[[], bool], timeout_s: float = 2) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.001)


async def running(stand: Stand, body: Callable[[], Awaitable[None]]) -> None:
    task = asyncio.create_task(stand.planner.run())
    try:
        await body()
    finally:
        task.cancel()


def test_orders_arriving_within_the_window_share_one_plan() -> None:
    stand = Stand()

    async def body() -> None:
        stand.order("a")
        await asyncio.sleep(GATHER_MS / 4 / 1000)  # the planner is gathering
        assert stand.asked == 0
        stand.order("b")
        await until(lambda: stand.asked == 1)
        await asyncio.sleep(3 * GATHER_MS / 1000)  # nothing more is asked while it is on its way
        assert stand.asked == 1
        assert stand.planner.waiting == {1, 2}

    asyncio.run(running(stand, body))


def test_an_order_arriving_during_a_batch_waits_for_it_then_is_planned_at_once() -> None:
    stand = Stand()

    async def body() -> None:
        stand.order("a")
        await until(lambda: stand.asked == 1)
        requests = stand.plan()
        assert requests and stand.planner.in_flight == {1: frozenset({1})}
        stand.order("b")
        await asyncio.sleep(3 * GATHER_MS / 1000)
        assert stand.asked == 1, "planned while a batch was in flight"
        stand.fill(requests)
        assert not stand.planner.in_flight
        await until(lambda: stand.asked == 2)

    asyncio.run(running(stand, body))


def test_the_timer_does_not_plan_while_a_batch_is_in_flight_until_it_is_in_doubt() -> None:
    stand = Stand()
    stand.order("a")
    stand.plan()
    stand.order("b")
    stand.planner.fall_back(books_moved=True)
    assert stand.asked == 0 and stand.planner.waiting == {2}
    stand.desk.now += HOLD_MS - 2  # the batch has waited as long as the exchange needs to answer
    stand.planner.fall_back(books_moved=False)
    assert stand.asked == 0
    stand.desk.now += 1
    stand.planner.fall_back(books_moved=False)
    assert stand.asked == 1, "the batch in doubt held the next one back"


def test_a_plan_that_serves_no_one_leaves_the_rest_to_the_timer_once_the_books_move() -> None:
    stand = Stand()

    async def body() -> None:
        stand.order("cheap", max_price=D(1))  # below the books: nothing to buy for it
        await until(lambda: stand.asked == 1)
        stand.plan()
        await asyncio.sleep(3 * GATHER_MS / 1000)
        assert stand.asked == 1
        stand.planner.fall_back(books_moved=False)
        assert stand.asked == 1, "planned again on the same books and orders"
        stand.planner.fall_back(books_moved=True)
        assert stand.asked == 2

    asyncio.run(running(stand, body))


def test_the_timer_plans_again_after_the_engine_state_changed() -> None:
    stand = Stand()

    async def body() -> None:
        stand.order("cheap", max_price=D(1))
        await until(lambda: stand.asked == 1)
        stand.plan()
        stand.planner.fall_back(books_moved=False)
        assert stand.asked == 1
        stand.order("cheap2", max_price=D(1))  # arrives: planned after the window
        await until(lambda: stand.asked == 2)
        stand.plan()
        stand.bus.publish(stand.desk.apply(CancelIndexOrder, "alice", "cheap2", "x1"))
        stand.planner.fall_back(books_moved=False)  # no book moved, but the orders did
        assert stand.asked == 3

    asyncio.run(running(stand, body))


def test_orders_cancelled_or_being_ended_do_not_wait() -> None:
    stand = Stand()
    stand.order("a")
    stand.order("b")
    stand.order("c")
    stand.bus.publish(stand.desk.apply(CancelIndexOrder, "alice", "b", "x1"))
    assert stand.planner.waiting == {1, 3}
    stand.plan()  # engages a and c
    stand.bus.publish(stand.desk.apply(CancelIndexOrder, "alice", "c", "x2"))  # ending
    assert stand.planner.waiting == set()


def test_resume_plans_what_the_journal_left_waiting() -> None:
    stand = Stand()

    async def body() -> None:
        stand.planner.resume([7], {}, {})
        await until(lambda: stand.asked == 1)

    asyncio.run(running(stand, body))


def test_resume_with_a_batch_just_planned_waits_for_it() -> None:
    stand = Stand()

    async def body() -> None:
        stand.planner.resume([7], {3: frozenset({9})}, {3: stand.desk.now})
        await asyncio.sleep(3 * GATHER_MS / 1000)
        assert stand.asked == 0

    asyncio.run(running(stand, body))


def test_resume_with_a_batch_in_doubt_plans_the_others_at_once() -> None:
    stand = Stand()
    stand.desk.now = 10 * HOLD_MS

    async def body() -> None:
        # Planned before a kill -9, its asset orders maybe never sent: it holds no one back.
        stand.planner.resume([7], {3: frozenset({9})}, {3: stand.desk.now - HOLD_MS})
        await until(lambda: stand.asked == 1)

    asyncio.run(running(stand, body))
