"""Batches of engaged index orders and the asset orders sent for them, each with its life as a
table (``lifecycle.py``; ``docs/architecture.md`` draws them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from solver.core.commands import AssetOrderOutcome
from solver.core.events import AssetOrderRequested
from solver.core.lifecycle import following
from solver.core.model import Side
from solver.core.money import ZERO


class AssetOrderState(StrEnum):
    REQUESTED = "requested"
    """Asked for (journaled): the exchange adapter sends it."""
    ACCEPTED = "accepted"
    """The exchange acknowledged it (its order id known)."""
    ENDED = "ended"
    """The exchange reported it final (filled, cancelled, expired or rejected)."""


class AssetOrderTrigger(StrEnum):
    ACCEPT = "accept"
    END = "end"


_A, _AT = AssetOrderState, AssetOrderTrigger
ASSET_ORDER_TRANSITIONS: dict[tuple[AssetOrderState, AssetOrderTrigger], AssetOrderState] = {
    (_A.REQUESTED, _AT.ACCEPT): _A.ACCEPTED,
    (_A.REQUESTED, _AT.END): _A.ENDED,  # an IOC filled or rejected at once: no ack first
    (_A.ACCEPTED, _AT.ACCEPT): _A.ACCEPTED,  # the ack delivered again (a reconciliation)
    (_A.ACCEPTED, _AT.END): _A.ENDED,
    (_A.ENDED, _AT.ACCEPT): _A.ENDED,  # the ack after the end (a query answered late)
}
"""An asset order's life; its end is once (a second end is refused before it moves)."""


@dataclass(slots=True)
class AssetOrder:
    """One LIMIT IOC order per asset per batch, and what the exchange reported of it."""

    id: int
    client_order_id: str
    """Derived from the journal-kept counter ``id``, so unique across restarts (Binance allows
    [A-Za-z0-9_-]{1,36})."""
    batch_id: int
    asset: str
    symbol: str
    side: Side
    price: Decimal
    quantity: Decimal
    exchange_order_id: str | None = None
    outcome: AssetOrderOutcome | None = None
    executed: Decimal = ZERO
    filled: Decimal = ZERO
    """Gross quantity of the trades recorded so far."""
    reason: str = ""
    state: AssetOrderState = AssetOrderState.REQUESTED

    @property
    def notional(self) -> Decimal:
        return self.price * self.quantity

    def requested(self) -> AssetOrderRequested:
        """The event that asked for this order."""
        return AssetOrderRequested(self.id, self.client_order_id, self.batch_id, self.symbol,
                                   self.side, self.price, self.quantity)

    def accept(self, exchange_order_id: str) -> None:
        self._move(AssetOrderTrigger.ACCEPT)
        self.exchange_order_id = exchange_order_id

    def end(self, outcome: AssetOrderOutcome, executed: Decimal, reason: str) -> None:
        self._move(AssetOrderTrigger.END)
        self.outcome, self.executed, self.reason = outcome, executed, reason

    def _move(self, trigger: AssetOrderTrigger) -> None:
        self.state = following(ASSET_ORDER_TRANSITIONS, f"asset order {self.id}", self.state,
                               trigger)

    @property
    def is_done(self) -> bool:
        """Terminal on the exchange and every trade it reported is recorded."""
        return self.state is AssetOrderState.ENDED and self.filled >= self.executed


class BatchState(StrEnum):
    IN_FLIGHT = "in_flight"
    """Its asset orders are out, or their trades not all recorded."""
    SETTLED = "settled"
    """Its lots allocated to its orders."""


class BatchTrigger(StrEnum):
    SETTLE = "settle"


BATCH_TRANSITIONS: dict[tuple[BatchState, BatchTrigger], BatchState] = {
    (BatchState.IN_FLIGHT, BatchTrigger.SETTLE): BatchState.SETTLED,
}
"""A batch's life: it settles once."""


@dataclass(slots=True)
class Batch:
    id: int
    ts: int
    engagements: dict[int, Decimal]
    """Index units planned per order id."""
    index_prices: dict[str, Decimal]
    inventory_used: dict[str, Decimal]
    asset_order_ids: list[int] = field(default_factory=list)
    state: BatchState = BatchState.IN_FLIGHT
    filled_units: dict[int, Decimal] = field(default_factory=dict)
    vwaps: dict[str, Decimal] = field(default_factory=dict)

    @property
    def settled(self) -> bool:
        return self.state is BatchState.SETTLED

    def settle(self, filled_units: dict[int, Decimal], vwaps: dict[str, Decimal]) -> None:
        self.state = following(BATCH_TRANSITIONS, f"batch {self.id}", self.state,
                               BatchTrigger.SETTLE)
        self.filled_units, self.vwaps = filled_units, vwaps
