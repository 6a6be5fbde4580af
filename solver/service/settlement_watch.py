"""Batches that do not settle in time: said loudly with their orders, counted in a metric the
operator watches, and recovered from the exchange's own record of their asset orders.

A batch settles once each of its asset orders is final and its trades add up to what the
exchange says it executed. If a fact is lost on the way (a trade the engine did not record),
the batch would wait with its orders' collateral held; past ``bound_ms`` the watch asks the
execution to hand the engine everything the exchange has of those orders again, and says so
again every ``bound_ms`` until the batch settles. It learns of batches from the events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import structlog
from prometheus_client import Gauge

from solver.core.bus import EventBus
from solver.core.events import AssetOrderRequested, BatchPlanned, BatchSettled, Envelope

log = structlog.get_logger(__name__)

OVERDUE = Gauge("solver_batches_overdue", "Batches not settled within the bound")

Recover = Callable[[Iterable[AssetOrderRequested]], None]


@dataclass(slots=True)
class _Waiting:
    planned_ts: int
    order_ids: tuple[int, ...]
    asset_orders: list[AssetOrderRequested] = field(default_factory=list)
    alarmed_ts: int | None = None


class SettlementWatch:
    def __init__(self, bus: EventBus, bound_ms: int, recover: Recover) -> None:
        self.bound_ms = bound_ms
        self.recover = recover
        self._waiting: dict[int, _Waiting] = {}
        bus.subscribe(BatchPlanned, self._planned)
        bus.subscribe(AssetOrderRequested, self._requested)
        bus.subscribe(BatchSettled, self._settled)

    def resume(self, batches: Iterable[tuple[int, int, tuple[int, ...],
                                            list[AssetOrderRequested]]]) -> None:
        """Watch the batches a restart found in flight: (id, planned at, its index orders,
        its asset orders)."""
        for batch_id, planned_ts, order_ids, requests in batches:
            self._waiting[batch_id] = _Waiting(planned_ts, order_ids, requests)

    def check(self, now: int) -> None:
        """Alarm and recover the batches past the bound (again every ``bound_ms``)."""
        overdue = [(b, w) for b, w in self._waiting.items() if now - w.planned_ts >= self.bound_ms]
        OVERDUE.set(len(overdue))
        for batch_id, waiting in overdue:
            if waiting.alarmed_ts is not None and now - waiting.alarmed_ts < self.bound_ms:
                continue
            waiting.alarmed_ts = now
            log.error("batch not settled in time; recovering it from the exchange",
                      batch_id=batch_id, waited_ms=now - waiting.planned_ts,
                      index_orders=list(waiting.order_ids),
                      asset_orders=[r.client_order_id for r in waiting.asset_orders])
            self.recover(waiting.asset_orders)

    @property
    def waiting(self) -> list[int]:
        return sorted(self._waiting)

    def _planned(self, envelope: Envelope[BatchPlanned]) -> None:
        event = envelope.event
        self._waiting[event.batch_id] = _Waiting(
            envelope.ts, tuple(e.order_id for e in event.engagements))

    def _requested(self, envelope: Envelope[AssetOrderRequested]) -> None:
        event = envelope.event
        waiting = self._waiting.get(event.batch_id)
        if waiting is not None:
            waiting.asset_orders.append(event)

    def _settled(self, envelope: Envelope[BatchSettled]) -> None:
        event = envelope.event
        waiting = self._waiting.pop(event.batch_id, None)
        if waiting is not None and waiting.alarmed_ts is not None:
            log.info("batch settled after its alarm", batch_id=event.batch_id,
                     waited_ms=envelope.ts - waiting.planned_ts)
