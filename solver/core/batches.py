"""Batches of engaged index orders and the asset orders sent for them."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from solver.core.commands import AssetOrderOutcome
from solver.core.events import AssetOrderRequested
from solver.core.model import Side
from solver.core.money import ZERO


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

    @property
    def notional(self) -> Decimal:
        return self.price * self.quantity

    def requested(self) -> AssetOrderRequested:
        """The event that asked for this order."""
        return AssetOrderRequested(self.id, self.client_order_id, self.batch_id, self.symbol,
                                   self.side, self.price, self.quantity)

    @property
    def is_done(self) -> bool:
        """Terminal on the exchange and every trade it reported is recorded."""
        return self.outcome is not None and self.filled >= self.executed


@dataclass(slots=True)
class Batch:
    id: int
    ts: int
    engagements: dict[int, Decimal]
    """Index units planned per order id."""
    index_prices: dict[str, Decimal]
    inventory_used: dict[str, Decimal]
    asset_order_ids: list[int] = field(default_factory=list)
    settled: bool = False
    filled_units: dict[int, Decimal] = field(default_factory=dict)
    vwaps: dict[str, Decimal] = field(default_factory=dict)
