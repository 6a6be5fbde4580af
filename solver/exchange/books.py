"""Local order books kept in sync from a REST snapshot plus the diff stream, by Binance's
rules ("How to manage a local order book correctly"):

1. buffer diffs until a snapshot arrives;
2. drop buffered diffs with ``u <= lastUpdateId``;
3. apply the rest in order: ``u <= local id`` is old and ignored, ``U > local id + 1`` is a gap
   that discards the book and asks for a new snapshot, otherwise set each level (a quantity of
   zero, compared as a number, removes it) and move the local id to ``u``.

A book that has not heard from the stream for ``max_age_ms`` is stale: the solver must not fit
liquidity on it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from solver.core.market import Level, OrderBook
from solver.exchange.wire import DepthDiff, DepthSnapshot

MAX_BUFFER = 10_000


class BookStatus(StrEnum):
    NEEDS_SNAPSHOT = "needs_snapshot"
    SYNCING = "syncing"
    LIVE = "live"


@dataclass(slots=True)
class LocalBook:
    symbol: str
    bids: dict[Decimal, Decimal] = field(default_factory=dict)
    asks: dict[Decimal, Decimal] = field(default_factory=dict)
    last_update_id: int = 0
    status: BookStatus = BookStatus.NEEDS_SNAPSHOT
    buffer: deque[DepthDiff] = field(default_factory=lambda: deque(maxlen=MAX_BUFFER))
    last_event_ms: int = 0
    resyncs: int = 0

    def on_diff(self, diff: DepthDiff, now: int) -> BookStatus:
        """Apply or buffer one diff; the status says whether a snapshot is wanted."""
        self.last_event_ms = now
        if self.status != BookStatus.LIVE:
            self.buffer.append(diff)
            return self.status
        if diff.last_update_id <= self.last_update_id:
            return self.status
        if diff.first_update_id > self.last_update_id + 1:
            self._resync(diff)
            return self.status
        self._apply(diff)
        return self.status

    def snapshot_requested(self) -> None:
        self.status = BookStatus.SYNCING

    def on_snapshot(self, snapshot: DepthSnapshot, now: int | None = None) -> BookStatus:
        """Start from ``snapshot`` (taken at ``now``) and replay the buffered diffs that
        follow it. A fresh snapshot is news too: a market quiet since is not stale."""
        if now is not None:
            self.last_event_ms = max(self.last_event_ms, now)
        self.bids = {p: q for p, q in snapshot.bids if q > 0}
        self.asks = {p: q for p, q in snapshot.asks if q > 0}
        self.last_update_id = snapshot.last_update_id
        buffered, self.buffer = self.buffer, deque(maxlen=MAX_BUFFER)
        self.status = BookStatus.LIVE
        for diff in buffered:
            if self.status != BookStatus.LIVE:
                self.buffer.append(diff)
            else:
                self.on_diff(diff, self.last_event_ms)
        return self.status

    def is_stale(self, now: int, max_age_ms: int) -> bool:
        return self.status != BookStatus.LIVE or now - self.last_event_ms > max_age_ms

    def order_book(self, depth: int = 100) -> OrderBook:
        """The core's view: best levels first."""
        asks = tuple(Level(p, self.asks[p]) for p in sorted(self.asks)[:depth])
        bids = tuple(Level(p, self.bids[p]) for p in sorted(self.bids, reverse=True)[:depth])
        return OrderBook(self.symbol, asks, bids)

    def _apply(self, diff: DepthDiff) -> None:
        for side, levels in ((self.bids, diff.bids), (self.asks, diff.asks)):
            for price, quantity in levels:
                if quantity == 0:
                    side.pop(price, None)
                else:
                    side[price] = quantity
        self.last_update_id = diff.last_update_id

    def _resync(self, diff: DepthDiff) -> None:
        self.bids, self.asks = {}, {}
        self.buffer = deque([diff], maxlen=MAX_BUFFER)
        self.status = BookStatus.NEEDS_SNAPSHOT
        self.resyncs += 1
