"""Order tracking: every asset order followed to a final state, every fill counted once.

The exchange reports the same facts on racing channels (the order's REST answer, the user
stream, queries, ``myTrades``). All of them go through ``OrderTracker``, which dedupes fills by
(symbol, order id, trade id), never lets an order's status or cumulative quantity go back, and
only then turns what is new into the core's inputs: ``AssetOrderAccepted`` on the first ack,
one ``AssetOrderFilled`` per trade, one ``AssetOrderEnded`` when the order is terminal.

States: pending new -> new -> partially filled -> filled | canceled | expired | rejected.
A timeout or 5xx leaves the order pending with ``outcome_unknown`` set; the reconciler
resolves it by querying the client order id, never by sending it again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from solver.core.commands import (
    AssetOrderAccepted,
    AssetOrderEnded,
    AssetOrderFilled,
    AssetOrderOutcome,
    Input,
)
from solver.core.events import AssetOrderRequested
from solver.core.lifecycle import following
from solver.core.money import ZERO


class ExchangeStatus(StrEnum):
    """Where the exchange says an order is (``docs/architecture.md`` has the diagram)."""

    PENDING_NEW = "pending_new"
    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REJECTED = "rejected"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL


_LIVE = (ExchangeStatus.PENDING_NEW, ExchangeStatus.NEW, ExchangeStatus.PARTIALLY_FILLED)
_TERMINAL = (ExchangeStatus.FILLED, ExchangeStatus.CANCELED, ExchangeStatus.EXPIRED,
             ExchangeStatus.REJECTED)

TRANSITIONS: dict[tuple[ExchangeStatus, ExchangeStatus], ExchangeStatus] = {
    (status, said): said
    for n, status in enumerate(_LIVE) for said in (*_LIVE[n + 1:], *_TERMINAL)}
"""(status, what the exchange says now) -> the next status: forward only. A report not in the
table is stale (a query answered before a later report, an end said again) and moves
nothing; the tracker's own conclusions (refused outright, not found) must be in it."""

BINANCE_STATUS = {
    "NEW": ExchangeStatus.NEW, "PENDING_NEW": ExchangeStatus.PENDING_NEW,
    "PARTIALLY_FILLED": ExchangeStatus.PARTIALLY_FILLED, "FILLED": ExchangeStatus.FILLED,
    "CANCELED": ExchangeStatus.CANCELED, "PENDING_CANCEL": ExchangeStatus.NEW,
    "REJECTED": ExchangeStatus.REJECTED, "EXPIRED": ExchangeStatus.EXPIRED,
    "EXPIRED_IN_MATCH": ExchangeStatus.EXPIRED,
}

_OUTCOME = {ExchangeStatus.FILLED: AssetOrderOutcome.FILLED,
            ExchangeStatus.CANCELED: AssetOrderOutcome.CANCELED,
            ExchangeStatus.EXPIRED: AssetOrderOutcome.EXPIRED,
            ExchangeStatus.REJECTED: AssetOrderOutcome.REJECTED}


@dataclass(frozen=True, slots=True)
class OrderReport:
    """What the exchange says of an order: an answer, a query, an executionReport."""

    symbol: str
    client_order_id: str
    exchange_order_id: int
    state: ExchangeStatus
    executed: Decimal
    reason: str = ""


@dataclass(frozen=True, slots=True)
class TradeReport:
    symbol: str
    exchange_order_id: int
    trade_id: int
    price: Decimal
    quantity: Decimal
    commission: Decimal
    commission_asset: str


@dataclass(slots=True)
class TrackedOrder:
    request: AssetOrderRequested
    state: ExchangeStatus = ExchangeStatus.PENDING_NEW
    exchange_order_id: int | None = None
    executed: Decimal = ZERO
    trades: dict[int, TradeReport] = field(default_factory=dict)
    cancel_requested: bool = False
    sending: bool = False
    """The send has not returned yet: the exchange may not have the order yet either, so
    reconciliation leaves it alone."""
    outcome_unknown: bool = False
    journaled_at: int | None = None
    """For an order a start found in the journal: when its batch was planned (ms)."""
    misses: int = 0
    last_update: int = 0
    reason: str = ""

    @property
    def client_order_id(self) -> str:
        return self.request.client_order_id

    @property
    def symbol(self) -> str:
        return self.request.symbol

    @property
    def recorded(self) -> Decimal:
        return sum((t.quantity for t in self.trades.values()), ZERO)

    @property
    def missing_trades(self) -> bool:
        """The exchange reported more executed than the trades we have seen."""
        return self.executed > self.recorded

    @property
    def is_live(self) -> bool:
        return self.state in (ExchangeStatus.NEW, ExchangeStatus.PARTIALLY_FILLED)

    @property
    def wants_cancel(self) -> bool:
        """A cancel was asked for before the ack, and the ack shows the order resting."""
        return self.cancel_requested and self.is_live


class OrderTracker:
    def __init__(self) -> None:
        self.orders: dict[str, TrackedOrder] = {}
        self._by_exchange_id: dict[tuple[str, int], str] = {}

    def track(self, request: AssetOrderRequested, now: int) -> TrackedOrder:
        """Start following an order before it is sent (idempotent)."""
        order = self.orders.get(request.client_order_id)
        if order is None:
            order = self.orders[request.client_order_id] = TrackedOrder(request, last_update=now)
        return order

    def get(self, client_order_id: str) -> TrackedOrder | None:
        return self.orders.get(client_order_id)

    def by_exchange_id(self, symbol: str, exchange_order_id: int) -> TrackedOrder | None:
        client_id = self._by_exchange_id.get((symbol, exchange_order_id))
        return self.orders.get(client_id) if client_id else None

    def open(self) -> list[TrackedOrder]:
        return [o for o in self.orders.values() if not o.state.is_terminal]

    # --- facts from the exchange -------------------------------------------------------------

    def on_report(self, report: OrderReport, now: int,
                  trades: tuple[TradeReport, ...] = ()) -> list[Input]:
        """Apply an order report and the trades that came with it; returns the new facts."""
        order = self.orders.get(report.client_order_id) or self.by_exchange_id(
            report.symbol, report.exchange_order_id)
        if order is None:
            return []
        facts: list[Input] = []
        order.last_update, order.misses, order.outcome_unknown = now, 0, False
        if order.exchange_order_id is None:
            order.exchange_order_id = report.exchange_order_id
            self._by_exchange_id[(report.symbol, report.exchange_order_id)] = order.client_order_id
            facts.append(AssetOrderAccepted(now, order.request.asset_order_id,
                                            str(report.exchange_order_id)))
        for trade in trades:
            facts += self.on_trade(trade, now)
        order.executed = max(order.executed, report.executed)
        if (order.state, report.state) in TRANSITIONS:
            order.state, order.reason = report.state, report.reason
            if report.state.is_terminal:
                facts.append(self._ended(order, now))
        return facts

    def on_trade(self, trade: TradeReport, now: int) -> list[Input]:
        order = self.by_exchange_id(trade.symbol, trade.exchange_order_id)
        if order is None or trade.trade_id in order.trades:
            return []
        order.trades[trade.trade_id] = trade
        order.last_update = now
        return [AssetOrderFilled(now, order.request.asset_order_id, str(trade.trade_id),
                                 trade.price, trade.quantity, trade.commission,
                                 trade.commission_asset)]

    def on_rejected(self, client_order_id: str, reason: str, now: int) -> list[Input]:
        """The exchange refused the order outright (no order was created)."""
        order = self.orders.get(client_order_id)
        if order is None or order.state.is_terminal or order.exchange_order_id is not None:
            return []
        order.state = following(TRANSITIONS, client_order_id, order.state,
                                ExchangeStatus.REJECTED)
        order.reason, order.last_update = reason, now
        return [self._ended(order, now)]

    def on_unknown(self, client_order_id: str, reason: str, now: int) -> None:
        """The send's outcome is unknown: the order may exist. Reconciliation will tell."""
        order = self.orders.get(client_order_id)
        if order is not None and not order.state.is_terminal:
            order.outcome_unknown, order.reason, order.last_update = True, reason, now

    def on_not_found(self, client_order_id: str, now: int, max_misses: int) -> list[Input]:
        """The exchange does not know the order (yet). After ``max_misses`` consecutive misses
        an order never acked was not placed (rejected); one with fills is canceled with
        them."""
        order = self.orders.get(client_order_id)
        if order is None or order.state.is_terminal:
            return []
        order.misses += 1
        order.last_update = now
        if order.misses < max_misses:
            return []
        placed = order.exchange_order_id is not None or order.trades
        order.state = following(TRANSITIONS, client_order_id, order.state,
                                ExchangeStatus.CANCELED if placed else ExchangeStatus.REJECTED)
        order.reason = "not found on the exchange after " + str(order.misses) + " queries"
        return [self._ended(order, now)]

    def request_cancel(self, client_order_id: str) -> bool:
        """Note a cancel; True when the order is acked and live (else the ack, when it shows
        the order live, makes ``wants_cancel`` true)."""
        order = self.orders.get(client_order_id)
        if order is None or order.state.is_terminal:
            return False
        order.cancel_requested = True
        return order.is_live

    def forget(self, client_order_id: str) -> None:
        order = self.orders.pop(client_order_id, None)
        if order is not None and order.exchange_order_id is not None:
            self._by_exchange_id.pop((order.symbol, order.exchange_order_id), None)

    def _ended(self, order: TrackedOrder, now: int) -> AssetOrderEnded:
        order.cancel_requested = False
        return AssetOrderEnded(now, order.request.asset_order_id, _OUTCOME[order.state],
                               order.executed, order.reason)


def recovered_facts(request: AssetOrderRequested, report: OrderReport,
                    trades: Iterable[TradeReport], now: int) -> list[Input]:
    """Every fact the exchange's own record of an order amounts to, whatever was said before:
    the engine keeps each once, so this recovers a batch that lost one."""
    order = request.asset_order_id
    facts: list[Input] = [AssetOrderAccepted(now, order, str(report.exchange_order_id))]
    facts += [AssetOrderFilled(now, order, str(t.trade_id), t.price, t.quantity, t.commission,
                               t.commission_asset) for t in trades]
    if report.state.is_terminal:
        facts.append(AssetOrderEnded(now, order, _OUTCOME[report.state], report.executed,
                                     report.reason))
    return facts
