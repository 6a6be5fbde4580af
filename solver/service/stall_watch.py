"""Planning that stalls: orders that could be bought alone wait, and plan after plan finds no
batch, for longer than ``bound_ms``. Said loudly with the orders' ids and the planner's reason,
counted in a metric the operator's alert rule watches (``PlanningStalled``), and shown by
``index-solver status`` (from the operations view).

With the planner's rules (``solver/core/planning.py``) this should not happen while the
exchange has liquidity: it means the books are too thin for the exchange's minimums, the
in-flight room is used up, or a defect. It learns from the events (``BatchNotPlanned``,
``BatchPlanned``) and asks the planner which orders wait.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

import structlog
from prometheus_client import Gauge

from solver.core.bus import EventBus
from solver.core.events import BatchNotPlanned, BatchPlanned, Envelope

log = structlog.get_logger(__name__)

STALLED = Gauge("solver_orders_stalled",
                "Orders that could be bought alone waiting while no batch has been planned "
                "for longer than the bound (service.stall_after_ms)")
SHOWN_IDS = 20
"""The order ids a log line names (with the count of all)."""


class StallWatch:
    def __init__(self, bus: EventBus, bound_ms: int,
                 waiting: Callable[[], Collection[int]]) -> None:
        """``waiting``: the orders waiting for a batch now (the planner's)."""
        self.bound_ms = bound_ms
        self._waiting = waiting
        self._since: int | None = None
        self._last: BatchNotPlanned | None = None
        self._alarmed_ts: int | None = None
        bus.subscribe(BatchNotPlanned, self._not_planned)
        bus.subscribe(BatchPlanned, self._planned)

    def check(self, now: int) -> None:
        """Set the metric; alarm (again every ``bound_ms``) while the stall lasts."""
        waiting = sorted(self._waiting())
        if self._since is None or self._last is None or not waiting \
                or now - self._since < self.bound_ms:
            STALLED.set(0)
            return
        STALLED.set(self._last.buyable)
        if self._alarmed_ts is not None and now - self._alarmed_ts < self.bound_ms:
            return
        self._alarmed_ts = now
        log.error("planning stalled: orders that can be bought wait and no batch is planned",
                  stalled_ms=now - self._since, buyable=self._last.buyable,
                  waiting=len(waiting), order_ids=waiting[:SHOWN_IDS],
                  reason=self._last.reason)

    @property
    def stalled_since(self) -> int | None:
        return self._since

    def _not_planned(self, envelope: Envelope[BatchNotPlanned]) -> None:
        self._last = envelope.event
        if not envelope.event.buyable:
            self._since = self._alarmed_ts = None
        elif self._since is None:
            self._since = envelope.ts

    def _planned(self, envelope: Envelope[BatchPlanned]) -> None:
        if self._alarmed_ts is not None:
            log.info("planning resumed after a stall", batch_id=envelope.event.batch_id,
                     stalled_ms=envelope.ts - (self._since or envelope.ts))
        self._since = self._alarmed_ts = None
