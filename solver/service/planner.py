"""When to plan a batch: as orders arrive, not on a timer.

An order that arrives while nothing is in flight is planned once a short gathering window
(``gather_ms``) has passed since it arrived (its input's time), so that orders arriving together
share a batch; the time it took to accept it counts, and orders that arrive meanwhile are
accepted before the plan anyway (the writer takes inputs in order). When a batch settles and
orders wait, the next is planned at once. A batch in flight holds the orders that arrive
meanwhile: they go together in the next one, unless the batch is in doubt (not settled
after ``hold_ms``, what the exchange needs to answer): then the orders waiting are planned
without it, so that no batch waits behind one in doubt. The timer stays as a fallback (the runtime's
``plan_every_ms``) for orders a plan could not serve (no liquidity, limits), which wait for
the books or the limits to change: it plans only when they did (a book moved, or a
transaction changed the orders, the inventory or what is in flight), so that an order that
waits for the market does not fill the journal with plans that change nothing.

The planner learns which orders wait and which batches are in flight from the events; at
start, before serving, it is told what the journal left (``resume``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from solver.core import events as ev
from solver.core.bus import EventBus
from solver.core.commands import PlanBatch
from solver.core.orders import OrderSnapshot


class Planner:
    def __init__(self, bus: EventBus, plan: Callable[[], None], gather_ms: float,
                 clock: Callable[[], int], hold_ms: int = 5_000) -> None:
        """``plan`` hands a ``PlanBatch`` to the writer (after bringing the books up to date);
        ``clock``: the inputs' clock (Unix ms); ``hold_ms``: the longest a batch in flight
        holds back the orders that wait."""
        self._plan = plan
        self._gather_ms = gather_ms
        self._hold_ms = hold_ms
        self._clock = clock
        self._arrived = 0  # when the first order waiting for the window arrived
        self.waiting: set[int] = set()
        """Open orders neither engaged in a batch nor being ended."""
        self.in_flight: dict[int, frozenset[int]] = {}
        """Batches not settled, with their orders."""
        self._planned_at: dict[int, int] = {}
        self._asked = False  # a PlanBatch is on its way to the writer
        self._due = asyncio.Event()
        self._at_once = False
        self._held = False
        self._changed = False  # since the last plan, something a plan depends on changed
        bus.observe(self)

    def resume(self, waiting: Iterable[int], in_flight: dict[int, frozenset[int]],
               planned_at: dict[int, int]) -> None:
        self.waiting.update(waiting)
        self.in_flight.update(in_flight)
        self._planned_at.update(planned_at)
        self._due.set()

    def fall_back(self, books_moved: bool) -> None:
        """The timer: plan what waits if the books moved or the engine's state changed since
        the last plan, unless a plan is on its way or a batch in flight (its settling plans
        at once)."""
        if (books_moved or self._changed) and self.waiting and not self._asked \
                and not self._held_back():
            self._ask()

    @property
    def asking(self) -> bool:
        """A plan is on its way to the writer."""
        return self._asked

    def hold(self) -> None:
        """Plan nothing more (the service is stopping); what waits stays for the next start."""
        self._held = True

    async def run(self) -> None:
        """Plan whenever it is due, until cancelled."""
        while True:
            await self._due.wait()
            if not self._at_once:
                left_ms = self._arrived + self._gather_ms - self._clock()
                if left_ms > 0:
                    await asyncio.sleep(left_ms / 1000)
            self._due.clear()
            self._at_once = False
            if self.waiting and not self._asked and not self._held_back():
                self._ask()

    def _held_back(self) -> bool:
        """A batch in flight holds the orders that wait for ``hold_ms`` at most."""
        now = self._clock()
        return any(now - self._planned_at.get(b, now) < self._hold_ms for b in self.in_flight)

    def _ask(self) -> None:
        if not self._held:
            self._asked = True
            self._plan()

    # --- what the events say ----------------------------------------------------------------

    def transaction_began(self, transaction: ev.Transaction) -> None:
        pass

    def transaction_ended(self, transaction: ev.Transaction) -> None:
        settled = False
        for envelope in transaction.events:  # batches first: orders' snapshots follow them
            event = envelope.event
            if isinstance(event, ev.BatchPlanned):
                orders = frozenset(e.order_id for e in event.engagements)
                self.in_flight[event.batch_id] = orders
                self._planned_at[event.batch_id] = envelope.ts
                self.waiting -= orders
            elif isinstance(event, ev.BatchSettled):
                settled = True
                self.waiting |= self.in_flight.pop(event.batch_id, frozenset())
                self._planned_at.pop(event.batch_id, None)
        arrived = False
        for envelope in transaction.events:
            order: OrderSnapshot | None = getattr(envelope.event, "order", None)
            if order is not None:
                arrived |= self._follow(order)
        if isinstance(transaction.input, PlanBatch):
            self._asked = self._changed = False
        elif transaction.events:
            self._changed = True
        if settled and self.waiting:
            self._at_once = True
            self._due.set()
        elif arrived and not self.in_flight:
            if not self._due.is_set():
                self._arrived = transaction.input.ts
            self._due.set()

    def _follow(self, order: OrderSnapshot) -> bool:
        """Whether ``order`` has just begun to wait."""
        engaged = any(order.order_id in orders for orders in self.in_flight.values())
        if not order.is_open or order.ending is not None or engaged:
            self.waiting.discard(order.order_id)
            return False
        new = order.order_id not in self.waiting
        self.waiting.add(order.order_id)
        return new
