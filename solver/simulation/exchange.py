"""A deterministic in-process exchange for ``simulate``: LIMIT IOC buys against fixed books.

Each order takes asks at or below its price, best first, consuming them; the rest expires.
Commission is ``fee_rate`` of the trade, in the quote (collateral) asset, or in the asset bought
or a third asset (BNB) where the market says so. Orders
that break a filter are rejected as the exchange would, and counted as violations: the solver
must never send one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from solver.config.market_files import MarketSpec
from solver.core.commands import (
    AssetOrderAccepted,
    AssetOrderEnded,
    AssetOrderFilled,
    AssetOrderOutcome,
    Input,
)
from solver.core.events import AssetOrderRequested
from solver.core.market import Level, OrderBook
from solver.core.money import ZERO, exact, floor_decimals


@dataclass(frozen=True, slots=True)
class Trade:
    symbol: str
    asset: str
    trade_id: str
    asset_order_id: int
    price: Decimal
    quantity: Decimal
    commission: Decimal
    commission_asset: str


@dataclass(slots=True)
class SimulatedExchange:
    markets: Mapping[str, MarketSpec]
    books: dict[str, list[Level]] = field(default_factory=dict)
    trades: list[Trade] = field(default_factory=list)
    _by_symbol: dict[str, MarketSpec] = field(default_factory=dict)
    _full: dict[str, OrderBook] = field(default_factory=dict)
    """Each market's book when full: the scenario's, or the last it moved to."""

    def __post_init__(self) -> None:
        self._by_symbol = {m.rules.symbol: m for m in self.markets.values()}
        self._full = {m.rules.symbol: m.book for m in self.markets.values()}
        self.refill()

    def refill(self, only_refilling: bool = False) -> None:
        for spec in self._by_symbol.values():
            if spec.refill or not only_refilling:
                self.books[spec.rules.symbol] = list(self._full[spec.rules.symbol].asks)

    def move(self, book: OrderBook) -> None:
        """The market moves to ``book`` (and refills to it from now on, if it refills)."""
        self._full[book.symbol] = book
        self.books[book.symbol] = list(book.asks)

    def book(self, symbol: str) -> OrderBook:
        return OrderBook(symbol, tuple(self.books[symbol]), self._full[symbol].bids)

    def _commission(self, spec: MarketSpec, price: Decimal,
                    quantity: Decimal) -> tuple[Decimal, str]:
        """``fee_rate`` of the trade, in the asset the market charges it in: a third asset at
        its market's first ask, to Binance's 8 decimals."""
        paid_in = spec.commission_asset or spec.rules.quote
        if paid_in == spec.rules.quote:
            return price * quantity * spec.fee_rate, paid_in
        if paid_in == spec.rules.asset:
            return quantity * spec.fee_rate, paid_in
        third = self.markets[paid_in].book.asks[0].price
        return floor_decimals(price * quantity * spec.fee_rate / third, 8), paid_in

    @exact
    def execute(self, request: AssetOrderRequested, ts: int) -> list[Input]:
        """The facts the exchange reports for one order, in the order it reports them."""
        spec = self._by_symbol.get(request.symbol)
        failure = spec and spec.rules.filter_failure(request.price, request.quantity)
        if spec is None or failure:
            reason = f"Filter failure: {failure}" if spec else "Invalid symbol."
            return [AssetOrderEnded(ts, request.asset_order_id, AssetOrderOutcome.REJECTED,
                                    ZERO, reason)]
        facts: list[Input] = [AssetOrderAccepted(ts, request.asset_order_id,
                                                 f"{request.symbol}-{request.asset_order_id}")]
        left = request.quantity
        asks = self.books[request.symbol]
        while left > 0 and asks and asks[0].price <= request.price:
            level = asks[0]
            take = min(left, level.quantity)
            left -= take
            asks[0] = Level(level.price, level.quantity - take)
            if asks[0].quantity == 0:
                asks.pop(0)
            commission, paid_in = self._commission(spec, level.price, take)
            trade = Trade(request.symbol, spec.rules.asset, str(len(self.trades) + 1),
                          request.asset_order_id, level.price, take, commission, paid_in)
            self.trades.append(trade)
            facts.append(AssetOrderFilled(ts, request.asset_order_id, trade.trade_id,
                                          trade.price, trade.quantity, trade.commission,
                                          trade.commission_asset))
        outcome = AssetOrderOutcome.FILLED if left == 0 else AssetOrderOutcome.EXPIRED
        facts.append(AssetOrderEnded(ts, request.asset_order_id, outcome,
                                     request.quantity - left))
        return facts
