"""Planning that stalls: orders wait, no batch is in flight, and no batch has been planned for
longer than ``bound_ms``, while the planner has not said that none of them can be bought (a
``BatchNotPlanned`` with ``buyable`` 0: every order waiting is priced out at its limit or a
remainder waiting for company, which ``completion_wait_ms`` bounds). Said loudly with the
orders' ids and the planner's last reason, counted in a metric the operator's alert rule
watches (``PlanningStalled``), and shown by ``index-solver status`` (the operations view).

It watches time, not only the plans: a stall in which no plan is even asked for is seen too.
With the planner's rules (``solver/core/planning.py``) a stall means the books are too thin
for the exchange's minimums, the in-flight room is used up, or a defect. It learns of plans
from the events and asks the planner which orders wait and which batches are in flight.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

import structlog
from prometheus_client import Gauge

from solver.core.bus import EventBus
from solver.core.events import BatchNotPlanned, BatchPlanned, Envelope

log = structlog.get_logger(__name__)

STALLED = Gauge("solver_orders_stalled",
                "Orders waiting while no batch has been planned or is in flight for longer "
                "than the bound (service.stall_after_ms)")
SHOWN_IDS = 20
"""The order ids a log line names (with the count of all)."""


class StallWatch:
    def __init__(self, bus: EventBus, bound_ms: int, waiting: Callable[[], Collection[int]],
                 in_flight: Callable[[], Collection[int]]) -> None:
        """``waiting``: the orders waiting for a batch now; ``in_flight``: the batches in
        flight (both the planner's)."""
        self.bound_ms = bound_ms
        self._waiting, self._in_flight = waiting, in_flight
        self._quiet_since: int | None = None
        self._last: BatchNotPlanned | None = None
        """What the last plan since the last batch said."""
        self._alarmed_ts: int | None = None
        bus.subscribe(BatchNotPlanned, self._not_planned)
        bus.subscribe(BatchPlanned, self._planned)

    def check(self, now: int) -> None:
        """Set the metric; alarm (again every ``bound_ms``) while the stall lasts."""
        waiting = sorted(self._waiting())
        if not waiting or self._in_flight():
            self._quiet_since = self._alarmed_ts = self._last = None
        elif self._quiet_since is None:
            self._quiet_since = now
        if not self._stalled(now):
            STALLED.set(0)
            return
        STALLED.set(len(waiting))
        if self._alarmed_ts is not None and now - self._alarmed_ts < self.bound_ms:
            return
        self._alarmed_ts = now
        log.error("planning stalled: orders wait and no batch is planned",
                  stalled_ms=now - (self._quiet_since or now), waiting=len(waiting),
                  order_ids=waiting[:SHOWN_IDS], reason=self._reason())

    @property
    def stalled_since(self) -> int | None:
        """Since when orders have waited with nothing planned or in flight."""
        return self._quiet_since

    def _stalled(self, now: int) -> bool:
        if self._quiet_since is None or now - self._quiet_since < self.bound_ms:
            return False
        return self._last is None or self._last.buyable > 0

    def _reason(self) -> str:
        if self._last is None:
            return "no plan was asked for since the last batch"
        return self._last.reason

    def _not_planned(self, envelope: Envelope[BatchNotPlanned]) -> None:
        self._last = envelope.event

    def _planned(self, envelope: Envelope[BatchPlanned]) -> None:
        if self._alarmed_ts is not None:
            log.info("planning resumed after a stall", batch_id=envelope.event.batch_id,
                     stalled_ms=envelope.ts - (self._quiet_since or envelope.ts))
        self._quiet_since = self._alarmed_ts = self._last = None
