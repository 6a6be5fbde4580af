"""Binance's JSON read into our types: symbol rules, order reports, trades, depth.

Numbers arrive as strings and become exact Decimals; nothing of python-binance's types
leaves this package.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from solver.core.market import MarketRules
from solver.core.money import ZERO, to_decimal
from solver.exchange.tracker import BINANCE_STATUS, OrderReport, TradeReport

Json = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class RateLimit:
    kind: str
    """REQUEST_WEIGHT, ORDERS or RAW_REQUESTS"""
    seconds: int
    limit: int


@dataclass(frozen=True, slots=True)
class DepthDiff:
    symbol: str
    first_update_id: int
    last_update_id: int
    bids: tuple[tuple[Decimal, Decimal], ...]
    asks: tuple[tuple[Decimal, Decimal], ...]
    ts: int = 0


@dataclass(frozen=True, slots=True)
class DepthSnapshot:
    symbol: str
    last_update_id: int
    bids: tuple[tuple[Decimal, Decimal], ...]
    asks: tuple[tuple[Decimal, Decimal], ...]


_SECONDS = {"SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86_400}


def rate_limits(info: Json) -> list[RateLimit]:
    return [RateLimit(r["rateLimitType"], _SECONDS[r["interval"]] * int(r["intervalNum"]),
                      int(r["limit"])) for r in info.get("rateLimits", [])]


def symbol_rules(info: Json) -> dict[str, MarketRules]:
    """Each symbol's PRICE_FILTER, LOT_SIZE and NOTIONAL (or legacy MIN_NOTIONAL)."""
    rules = {}
    for symbol in info["symbols"]:
        filters = {f["filterType"]: f for f in symbol["filters"]}
        price, lot = filters.get("PRICE_FILTER", {}), filters.get("LOT_SIZE", {})
        notional = filters.get("NOTIONAL") or filters.get("MIN_NOTIONAL") or {}
        rules[symbol["symbol"]] = MarketRules(
            symbol["symbol"], symbol["baseAsset"], symbol["quoteAsset"],
            tick_size=number(price.get("tickSize")), step_size=number(lot.get("stepSize")),
            min_qty=number(lot.get("minQty")), max_qty=number(lot.get("maxQty")),
            min_notional=number(notional.get("minNotional")))
    return rules


def free_balances(account: Json) -> dict[str, Decimal]:
    """What ``GET /api/v3/account`` says is free of each asset."""
    return {b["asset"]: number(b["free"]) for b in account.get("balances", [])}


def taker_fee_rate(account: Json) -> Decimal:
    """The account's taker commission as a fraction, from ``GET /api/v3/account``:
    ``commissionRates.taker``, or else ``takerCommission`` (basis points)."""
    rates = account.get("commissionRates")
    if isinstance(rates, dict) and "taker" in rates:
        return number(rates["taker"])
    return number(str(account.get("takerCommission", 0))) / 10_000


def order_answer(body: Json) -> tuple[OrderReport, tuple[TradeReport, ...]]:
    """A REST or WebSocket API order answer (ACK, RESULT, FULL), a query or a cancel."""
    symbol, order_id = body["symbol"], int(body["orderId"])
    client_id = body.get("origClientOrderId") or body["clientOrderId"]
    status = BINANCE_STATUS[body.get("status", "NEW")]
    trades = tuple(TradeReport(symbol, order_id, int(f["tradeId"]), number(f["price"]),
                               number(f["qty"]), number(f["commission"]), f["commissionAsset"])
                   for f in body.get("fills", ()))
    report = OrderReport(symbol, client_id, order_id, status,
                         number(body.get("executedQty")), body.get("expiryReason", ""))
    return report, trades


def execution_report(event: Json) -> tuple[OrderReport, TradeReport | None]:
    """An ``executionReport``: for cancels ``C`` holds our order's id and ``c`` the
    cancel request's."""
    symbol, order_id = event["s"], int(event["i"])
    client_id = event["C"] if event["x"] == "CANCELED" and event.get("C") else event["c"]
    report = OrderReport(symbol, client_id, order_id, BINANCE_STATUS[event["X"]],
                         number(event["z"]), event.get("eR") or _reason(event.get("r")))
    trade = None
    if event["x"] == "TRADE" and int(event["t"]) >= 0:
        trade = TradeReport(symbol, order_id, int(event["t"]), number(event["L"]),
                            number(event["l"]), number(event["n"]), event.get("N") or "")
    return report, trade


def trade_row(row: Json) -> TradeReport:
    """A ``myTrades`` row."""
    return TradeReport(row["symbol"], int(row["orderId"]), int(row["id"]), number(row["price"]),
                       number(row["qty"]), number(row["commission"]), row["commissionAsset"])


def depth_diff(event: Json) -> DepthDiff:
    return DepthDiff(event["s"], int(event["U"]), int(event["u"]), _levels(event["b"]),
                     _levels(event["a"]), int(event.get("E", 0)))


def depth_snapshot(symbol: str, body: Json) -> DepthSnapshot:
    return DepthSnapshot(symbol, int(body["lastUpdateId"]), _levels(body["bids"]),
                         _levels(body["asks"]))


def number(text: Any) -> Decimal:
    """An exact, finite number; an absent field is zero."""
    return to_decimal(text) if text not in (None, "") else ZERO


def depth_weight(limit: int) -> int:
    """Binance's request weight of ``GET /api/v3/depth`` for ``limit`` levels."""
    return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250


def _levels(rows: Any) -> tuple[tuple[Decimal, Decimal], ...]:
    return tuple((to_decimal(p), to_decimal(q)) for p, q in rows)


def _reason(code: Any) -> str:
    return "" if code in (None, "NONE") else str(code)
