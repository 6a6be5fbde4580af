"""The mock exchange's state and rules: Binance Spot matching, filters, balances and user
events, deterministic for a seed and free of I/O (the server supplies the clock).

One account trades against books that a synthetic market maker keeps moving: every ``step``
shifts each book by a seeded random walk of whole ticks and refills its levels. Orders take
liquidity as takers (LIMIT GTC/IOC/FOK, MARKET by quantity or by quote amount); a GTC
remainder rests and is filled when the walk crosses it. Commission is charged in the asset
received. Every change is reported as Binance reports it: ``executionReport`` and
``outboundAccountPosition`` to user listeners, ``depthUpdate`` with consecutive U/u ids to
depth listeners.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from mocks.binance.messages import Rejection, wire
from solver.config.market_files import MarketSpec
from solver.core.money import ZERO, floor_to

Json = dict[str, Any]
COMMISSION = Decimal("0.00000001")
TERMINAL = {"FILLED", "CANCELED", "EXPIRED", "REJECTED", "EXPIRED_IN_MATCH"}
ORDER_TYPES = ("LIMIT", "MARKET")
TIME_IN_FORCE = ("GTC", "IOC", "FOK")
RESPONSE_TYPES = ("ACK", "RESULT", "FULL")
NUMBER = re.compile(r"[0-9]{1,20}(\.[0-9]{1,20})?")


@dataclass(slots=True)
class Order:
    symbol: str
    order_id: int
    client_order_id: str
    side: str
    type: str
    time_in_force: str
    price: Decimal
    orig_qty: Decimal
    orig_quote_qty: Decimal
    time: int
    executed: Decimal = ZERO
    cum_quote: Decimal = ZERO
    status: str = "NEW"
    update_time: int = 0
    expiry_reason: str = ""
    locked: Decimal = ZERO

    @property
    def is_open(self) -> bool:
        return self.status in ("NEW", "PARTIALLY_FILLED")

    def result(self) -> Json:
        body = {
            "symbol": self.symbol, "orderId": self.order_id, "orderListId": -1,
            "clientOrderId": self.client_order_id, "transactTime": self.time,
            "price": wire(self.price), "origQty": wire(self.orig_qty),
            "executedQty": wire(self.executed), "origQuoteOrderQty": wire(self.orig_quote_qty),
            "cummulativeQuoteQty": wire(self.cum_quote), "status": self.status,
            "timeInForce": self.time_in_force or "GTC", "type": self.type, "side": self.side,
            "workingTime": self.time, "selfTradePreventionMode": "NONE",
        }
        if self.expiry_reason:
            body["expiryReason"] = self.expiry_reason
        return body

    def query(self) -> Json:
        body = self.result()
        del body["transactTime"]
        body.update(stopPrice=wire(ZERO), icebergQty=wire(ZERO), time=self.time,
                    updateTime=self.update_time or self.time, isWorking=True,
                    workingTime=self.time)
        return body


@dataclass(frozen=True, slots=True)
class Trade:
    symbol: str
    id: int
    order_id: int
    price: Decimal
    qty: Decimal
    commission: Decimal
    commission_asset: str
    time: int
    is_buyer: bool
    is_maker: bool

    def fill(self) -> Json:
        return {"price": wire(self.price), "qty": wire(self.qty),
                "commission": wire(self.commission), "commissionAsset": self.commission_asset,
                "tradeId": self.id}

    def row(self) -> Json:
        return {"symbol": self.symbol, "id": self.id, "orderId": self.order_id,
                "orderListId": -1, "price": wire(self.price), "qty": wire(self.qty),
                "quoteQty": wire(self.price * self.qty), "commission": wire(self.commission),
                "commissionAsset": self.commission_asset, "time": self.time,
                "isBuyer": self.is_buyer, "isMaker": self.is_maker, "isBestMatch": True}


@dataclass(slots=True)
class Book:
    """One symbol's market: the maker's levels, our resting orders, the update id."""

    spec: MarketSpec
    asks: dict[Decimal, Decimal] = field(default_factory=dict)
    bids: dict[Decimal, Decimal] = field(default_factory=dict)
    update_id: int = 1
    offset: int = 0
    """Ticks the market maker has walked from the file's book."""
    next_trade_id: int = 1

    def __post_init__(self) -> None:
        self.asks, self.bids = self.shape()

    @property
    def symbol(self) -> str:
        return self.spec.rules.symbol

    def shape(self) -> tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]:
        shift = self.spec.rules.tick_size * self.offset
        return ({lv.price + shift: lv.quantity for lv in self.spec.book.asks},
                {lv.price + shift: lv.quantity for lv in self.spec.book.bids
                 if lv.price + shift > 0})

    def side(self, taker_side: str) -> dict[Decimal, Decimal]:
        return self.asks if taker_side == "BUY" else self.bids

    def levels(self, taker_side: str) -> list[Decimal]:
        return sorted(self.side(taker_side), reverse=taker_side == "SELL")

    def depth(self, limit: int) -> Json:
        return {"lastUpdateId": self.update_id,
                "bids": [[wire(p), wire(self.bids[p])] for p in self.levels("SELL")[:limit]],
                "asks": [[wire(p), wire(self.asks[p])] for p in self.levels("BUY")[:limit]]}


class MockExchange:
    def __init__(self, markets: dict[str, MarketSpec], balances: dict[str, Decimal],
                 seed: int = 1, max_walk_ticks: int = 2) -> None:
        self.books = {spec.rules.symbol: Book(spec) for spec in markets.values()}
        self.free: dict[str, Decimal] = dict(balances)
        self.locked: dict[str, Decimal] = {}
        self.orders: dict[int, Order] = {}
        self.trades: list[Trade] = []
        self.next_order_id = 1000
        self.random = random.Random(seed)
        self.max_walk_ticks = max_walk_ticks
        self.user_listeners: list[Callable[[Json], None]] = []
        self.depth_listeners: list[Callable[[Json], None]] = []
        self._client_ids: dict[str, int] = {}

    # --- queries ----------------------------------------------------------------------------

    def book(self, symbol: str) -> Book:
        book = self.books.get(symbol)
        if book is None:
            raise Rejection(400, -1121, "Invalid symbol.")
        return book

    def find(self, symbol: str, order_id: int | None, client_id: str | None) -> Order | None:
        if order_id is None and client_id:
            order_id = self._client_ids.get(client_id)
        order = self.orders.get(order_id) if order_id is not None else None
        if order is None or order.symbol != symbol or (
                client_id and order.client_order_id != client_id):
            return None
        return order

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        return [o for o in self.orders.values() if o.is_open and symbol in (None, o.symbol)]

    def trades_of(self, symbol: str, order_id: int | None = None, from_id: int | None = None,
                  limit: int = 500) -> list[Trade]:
        rows = [t for t in self.trades if t.symbol == symbol
                and order_id in (None, t.order_id) and (from_id is None or t.id >= from_id)]
        return rows[:limit]

    def balances(self) -> list[Json]:
        assets = sorted(set(self.free) | set(self.locked))
        return [{"asset": a, "free": wire(self.free.get(a, ZERO)),
                 "locked": wire(self.locked.get(a, ZERO))} for a in assets]

    # --- orders -----------------------------------------------------------------------------

    def place(self, params: dict[str, str], now: int) -> tuple[Order, list[Trade]]:
        """Validate, create and match one order; raise ``Rejection`` for what Binance
        refuses before creating an order."""
        book = self.book(required(params, "symbol"))
        side, kind = choice(params, "side", ("BUY", "SELL")), choice(params, "type", ORDER_TYPES)
        tif = choice(params, "timeInForce", TIME_IN_FORCE) if kind == "LIMIT" else ""
        if "newOrderRespType" in params:
            choice(params, "newOrderRespType", RESPONSE_TYPES)
        client_id = params.get("newClientOrderId") or f"mock-{self.next_order_id}"
        if not valid_client_id(client_id):
            raise Rejection(400, -1100, "Illegal characters found in parameter 'newClientOrderId'"
                                        "; legal range is '^[a-zA-Z0-9-_]{1,36}$'.")
        price, qty, quote_qty = self._amounts(params, kind, side)
        if any(o.client_order_id == client_id for o in self.open_orders()):
            raise Rejection(400, -2010, "Duplicate order sent.")
        self._check_filters(book, kind, side, price, qty, quote_qty)
        cost = self._cost(book, side, kind, price, qty, quote_qty)
        paying = book.spec.rules.quote if side == "BUY" else book.spec.rules.asset
        if self.free.get(paying, ZERO) < cost:
            raise Rejection(400, -2010, "Account has insufficient balance for requested action.")
        if kind == "MARKET" and not book.side(side):
            raise Rejection(400, -2010, "Order book liquidity is less than LOT_SIZE filter "
                                        "minimum quantity.")
        order = Order(book.symbol, self.next_order_id, client_id, side, kind, tif,
                      price, qty, quote_qty, now)
        self.next_order_id += 1
        self.orders[order.order_id] = order
        self._client_ids[client_id] = order.order_id
        self._move(paying, cost, lock=True)
        order.locked = cost
        self._report(order, "NEW", now)
        if tif == "FOK" and self._available(book, side, price) < qty:
            trades: list[Trade] = []
        else:
            trades = self._match(book, order, now, is_maker=False)
        self._finish_taker(book, order, now)
        return order, trades

    def cancel(self, params: dict[str, str], now: int) -> Order:
        book = self.book(required(params, "symbol"))
        order_id, client_id = order_ref(params)
        order = self.find(book.symbol, order_id, client_id)
        if order is None or not order.is_open:
            raise Rejection(400, -2011, "Unknown order sent.")
        self._release(order)
        order.status, order.update_time = "CANCELED", now
        cancel_id = params.get("newClientOrderId") or f"cancel-{order.order_id}"
        self._report(order, "CANCELED", now, client_id=cancel_id)
        self._account_position(now)
        return order

    def highest_fee_rate(self) -> Decimal:
        """The commission rate the account pays at most, over every market."""
        return max((book.spec.fee_rate for book in self.books.values()), default=ZERO)

    # --- the market maker -------------------------------------------------------------------

    def step(self, now: int) -> None:
        """Walk every book by a few ticks, refill it, and fill resting orders it crosses."""
        for book in self.books.values():
            walk = self.random.randint(-self.max_walk_ticks, self.max_walk_ticks)
            lowest = min((lv.price for lv in book.spec.book.bids), default=None)
            tick = book.spec.rules.tick_size
            if lowest is not None and lowest + tick * (book.offset + walk) <= 0:
                walk = 0  # keep every price positive
            book.offset += walk
            asks, bids = book.shape()
            self._change_levels(book, asks, bids, now)
            for order in [o for o in self.open_orders(book.symbol)]:
                self._match(book, order, now, is_maker=True)
                if order.executed == order.orig_qty:
                    self._close(order, "FILLED", now)
                    self._account_position(now)

    # --- internals --------------------------------------------------------------------------

    def _amounts(self, params: dict[str, str], kind: str, side: str
                 ) -> tuple[Decimal, Decimal, Decimal]:
        price = number(params, "price") if kind == "LIMIT" else ZERO
        if kind == "MARKET" and "price" in params:
            raise Rejection(400, -1106, "Parameter 'price' sent when not required.")
        if kind == "MARKET" and "quoteOrderQty" in params:
            if "quantity" in params:
                raise Rejection(400, -1106, "Parameter 'quantity' sent when not required.")
            return price, ZERO, number(params, "quoteOrderQty")
        return price, number(params, "quantity"), ZERO

    def _check_filters(self, book: Book, kind: str, side: str, price: Decimal,
                       qty: Decimal, quote_qty: Decimal) -> None:
        """LIMIT orders against PRICE_FILTER, LOT_SIZE and NOTIONAL at their price; MARKET
        orders against MARKET_LOT_SIZE, and NOTIONAL at the best opposite price."""
        rules = book.spec.rules
        if kind == "LIMIT":
            failure = rules.filter_failure(price, qty)
        elif qty:
            levels = book.levels(side)
            reference = levels[0] if levels else None
            failure = rules.filter_failure(reference or rules.tick_size or Decimal(1), qty)
            if failure == "LOT_SIZE":
                failure = "MARKET_LOT_SIZE"
            elif failure == "NOTIONAL" and reference is None:
                failure = None
        else:
            failure = "NOTIONAL" if quote_qty < rules.min_notional else None
        if failure:
            raise Rejection(400, -1013, f"Filter failure: {failure}")

    def _cost(self, book: Book, side: str, kind: str, price: Decimal, qty: Decimal,
              quote_qty: Decimal) -> Decimal:
        """What the order locks: the quote it may spend for a buy, the base for a sell."""
        if side == "SELL":
            return qty if qty else self._base_for_quote(book, quote_qty)
        if kind == "LIMIT":
            return price * qty
        if quote_qty:
            return quote_qty
        return sum((p * q for p, q in self._walk(book, side, qty)), ZERO)

    def _base_for_quote(self, book: Book, quote_qty: Decimal) -> Decimal:
        step = book.spec.rules.step_size
        left, base = quote_qty, ZERO
        for level in book.levels("SELL"):
            take = floor_to(min(book.bids[level], left / level), step)
            base, left = base + take, left - take * level
        return base

    def _walk(self, book: Book, side: str, qty: Decimal) -> Iterator[tuple[Decimal, Decimal]]:
        """The levels a market order for ``qty`` would take, and how much of each."""
        left = qty
        for level in book.levels(side):
            if left <= 0:
                return
            take = min(left, book.side(side)[level])
            left -= take
            yield level, take

    def _available(self, book: Book, side: str, limit: Decimal) -> Decimal:
        return sum((book.side(side)[p] for p in book.levels(side) if crosses(side, p, limit)),
                   ZERO)

    def _match(self, book: Book, order: Order, now: int, is_maker: bool) -> list[Trade]:
        step = book.spec.rules.step_size
        limit = order.price if order.type == "LIMIT" else None
        trades = []
        for level in book.levels(order.side):
            if limit is not None and not crosses(order.side, level, limit):
                break
            if order.orig_qty:
                take = min(order.orig_qty - order.executed, book.side(order.side)[level])
            else:
                spend = (order.orig_quote_qty - order.cum_quote) / level
                take = floor_to(min(spend, book.side(order.side)[level]), step)
            if take <= 0:
                break
            trades.append(self._trade(book, order, level, take, now, is_maker))
        return trades

    def _trade(self, book: Book, order: Order, price: Decimal, qty: Decimal, now: int,
               is_maker: bool) -> Trade:
        rules = book.spec.rules
        levels = book.side(order.side)
        levels[price] -= qty
        if levels[price] == 0:
            del levels[price]
        self._publish_depth(book, [(order.side, price, levels.get(price, ZERO))], now)
        quote = price * qty
        buy = order.side == "BUY"
        received, paid = (rules.asset, rules.quote) if buy else (rules.quote, rules.asset)
        gross = qty if buy else quote
        commission = (gross * book.spec.fee_rate).quantize(COMMISSION, ROUND_HALF_UP)
        spent = quote if buy else qty
        order.locked -= spent
        self.locked[paid] = self.locked.get(paid, ZERO) - spent
        self.free[received] = self.free.get(received, ZERO) + gross - commission
        trade = Trade(book.symbol, book.next_trade_id, order.order_id, price, qty, commission,
                      received, now, buy, is_maker)
        book.next_trade_id += 1
        self.trades.append(trade)
        order.executed += qty
        order.cum_quote += quote
        order.status, order.update_time = "PARTIALLY_FILLED", now
        self._report(order, "TRADE", now, trade=trade)
        return trade

    def _finish_taker(self, book: Book, order: Order, now: int) -> None:
        if order.orig_qty and order.executed == order.orig_qty:
            self._close(order, "FILLED", now)
        elif order.orig_quote_qty and order.executed and book.side(order.side):
            order.orig_qty = order.executed  # spent all a whole step could buy
            self._close(order, "FILLED", now)
        elif order.type == "MARKET":
            self._expire(order, "INSUFFICIENT_LIQUIDITY", now)
        elif order.time_in_force == "IOC":
            self._expire(order, "UNFILLED_IOC_QUANTITY_EXPIRED", now)
        elif order.time_in_force == "FOK":
            self._expire(order, "UNFILLED_FOK_ORDER_EXPIRED", now)
        self._account_position(now)

    def _expire(self, order: Order, reason: str, now: int) -> None:
        order.expiry_reason = reason
        self._close(order, "EXPIRED", now)

    def _close(self, order: Order, status: str, now: int) -> None:
        self._release(order)
        order.status, order.update_time = status, now
        if status != "FILLED":
            self._report(order, status, now)

    def _release(self, order: Order) -> None:
        book = self.books[order.symbol]
        paying = book.spec.rules.quote if order.side == "BUY" else book.spec.rules.asset
        self._move(paying, order.locked, lock=False)
        order.locked = ZERO

    def _move(self, asset: str, amount: Decimal, lock: bool) -> None:
        sign = 1 if lock else -1
        self.free[asset] = self.free.get(asset, ZERO) - sign * amount
        self.locked[asset] = self.locked.get(asset, ZERO) + sign * amount

    def _change_levels(self, book: Book, asks: dict[Decimal, Decimal],
                       bids: dict[Decimal, Decimal], now: int) -> None:
        changes = [(side, price, new.get(price, ZERO))
                   for side, old, new in (("BUY", book.asks, asks), ("SELL", book.bids, bids))
                   for price in sorted(set(old) | set(new)) if old.get(price) != new.get(price)]
        book.asks, book.bids = asks, bids
        if changes:
            self._publish_depth(book, changes, now)

    def _publish_depth(self, book: Book, changes: list[tuple[str, Decimal, Decimal]],
                       now: int) -> None:
        first = book.update_id + 1
        book.update_id += len(changes)
        event = {"e": "depthUpdate", "E": now, "s": book.symbol, "U": first,
                 "u": book.update_id,
                 "b": [[wire(p), wire(q)] for side, p, q in changes if side == "SELL"],
                 "a": [[wire(p), wire(q)] for side, p, q in changes if side == "BUY"]}
        for listener in self.depth_listeners:
            listener(event)

    def _report(self, order: Order, execution: str, now: int, trade: Trade | None = None,
                client_id: str | None = None) -> None:
        event = {
            "e": "executionReport", "E": now, "s": order.symbol,
            "c": client_id or order.client_order_id, "S": order.side, "o": order.type,
            "f": order.time_in_force or "GTC", "q": wire(order.orig_qty),
            "p": wire(order.price), "P": wire(ZERO), "F": wire(ZERO), "g": -1,
            "C": order.client_order_id if client_id else "", "x": execution,
            "X": order.status, "r": "NONE", "i": order.order_id,
            "l": wire(trade.qty if trade else ZERO), "z": wire(order.executed),
            "L": wire(trade.price if trade else ZERO),
            "n": wire(trade.commission) if trade else "0",
            "N": trade.commission_asset if trade else None, "T": now,
            "t": trade.id if trade else -1, "I": len(self.trades) * 10 + len(self.orders),
            "w": order.is_open, "m": bool(trade and trade.is_maker), "M": False,
            "O": order.time, "Z": wire(order.cum_quote),
            "Y": wire(trade.price * trade.qty if trade else ZERO),
            "Q": wire(order.orig_quote_qty), "W": order.time, "V": "NONE",
        }
        if order.expiry_reason and execution == "EXPIRED":
            event["eR"] = order.expiry_reason
        self._emit(event)

    def _account_position(self, now: int) -> None:
        self._emit({"e": "outboundAccountPosition", "E": now, "u": now,
                    "B": [{"a": b["asset"], "f": b["free"], "l": b["locked"]}
                          for b in self.balances()]})

    def _emit(self, event: Json) -> None:
        for listener in self.user_listeners:
            listener(event)


def crosses(side: str, level: Decimal, limit: Decimal) -> bool:
    return level <= limit if side == "BUY" else level >= limit


def required(params: dict[str, str], name: str) -> str:
    value = params.get(name)
    if not value:
        raise Rejection(400, -1102, f"Mandatory parameter '{name}' was not sent, was "
                                    "empty/null, or malformed.")
    return value


def choice(params: dict[str, str], name: str, allowed: tuple[str, ...]) -> str:
    value = required(params, name)
    if value not in allowed:
        raise Rejection(400, -1100, f"Illegal characters found in parameter '{name}'; "
                                    f"legal range is '{'|'.join(allowed)}'.")
    return value


def number(params: dict[str, str], name: str) -> Decimal:
    text = required(params, name)
    if not NUMBER.fullmatch(text):
        raise Rejection(400, -1100, f"Illegal characters found in parameter '{name}'; "
                                    "legal range is '^([0-9]{1,20})(\\.[0-9]{1,20})?$'.")
    value = Decimal(text)
    if value <= 0:
        raise Rejection(400, -1013, f"Invalid {name}.")
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -8:
        raise Rejection(400, -1111, f"Parameter '{name}' has too much precision.")
    return value


def order_ref(params: dict[str, str]) -> tuple[int | None, str | None]:
    order_id, client_id = params.get("orderId"), params.get("origClientOrderId")
    if not order_id and not client_id:
        raise Rejection(400, -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but "
                                    "both were empty/null!")
    if order_id is not None and not order_id.isdigit():
        raise Rejection(400, -1100, "Illegal characters found in parameter 'orderId'; legal "
                                    "range is '^[0-9]{1,20}$'.")
    return (int(order_id) if order_id else None), client_id


def valid_client_id(text: str) -> bool:
    return 0 < len(text) <= 36 and all(c.isascii() and (c.isalnum() or c in "-_") for c in text)
