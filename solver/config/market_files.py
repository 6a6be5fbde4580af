"""Markets as a file describes them, for the simulated and the mock exchange alike: each
market's exchange filters, its book, its fee rate, whether its book refills, and the asset its
commission is paid in (``examples/markets/*.toml``, a scenario's ``[markets]``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from solver.config.fields import (
    ConfigError,
    expect_list,
    expect_number,
    expect_table,
    expect_text,
    reject_unknown,
)
from solver.core.market import Level, MarketRules, OrderBook
from solver.core.money import ONE, ZERO


@dataclass(frozen=True, slots=True)
class MarketSpec:
    rules: MarketRules
    book: OrderBook
    fee_rate: Decimal
    refill: bool
    commission_asset: str = ""
    """The asset commission is paid in: the quote asset when empty, else the market's own
    asset or a third one (priced at its market's first ask in the scenario)."""




def parse_markets(table: Mapping[str, Any]) -> dict[str, MarketSpec]:
    markets: dict[str, MarketSpec] = {}
    for asset, spec in table.items():
        market = _market(asset, expect_table(spec, f"markets.{asset}"))
        symbol = market.rules.symbol
        # The engine and the exchange know a market by its symbol: a second one would hide it.
        other = next((a for a, m in markets.items() if m.rules.symbol == symbol), None)
        if other is not None:
            raise ConfigError(f"markets.{asset}.symbol: {symbol} is already the symbol of "
                                f"markets.{other}")
        markets[asset] = market
    for asset, market in markets.items():
        paid_in = market.commission_asset
        if paid_in not in ("", asset, market.rules.quote) and not (
                paid_in in markets and markets[paid_in].book.asks):
            raise ConfigError(f"markets.{asset}.commission_asset: {paid_in} needs a market "
                                "with asks to price the commission")
    return markets


def _market(asset: str, spec: Mapping[str, Any]) -> MarketSpec:
    key = f"markets.{asset}"
    allowed = {"symbol", "quote", "asks", "bids", "tick_size", "step_size", "min_qty",
               "max_qty", "min_notional", "fee_rate", "refill", "commission_asset"}
    reject_unknown(spec, allowed, key)
    symbol = spec.get("symbol")
    if not isinstance(symbol, str) or not symbol:
        raise ConfigError(f"{key}.symbol: required, e.g. {asset}USDC")
    quote = spec.get("quote") or (symbol[len(asset):] if symbol.startswith(asset) else "")
    if not quote:
        raise ConfigError(f"{key}.quote: cannot tell the quote asset of {symbol}")
    rules = MarketRules(symbol, asset, str(quote), **{
        f: expect_number(spec.get(f, 0), f"{key}.{f}", minimum=ZERO)
        for f in ("tick_size", "step_size", "min_qty", "max_qty", "min_notional")})
    asks = levels(spec.get("asks", []), f"{key}.asks", ascending=True)
    bids = levels(spec.get("bids", []), f"{key}.bids", ascending=False)
    refill = spec.get("refill", False)
    if not isinstance(refill, bool):
        raise ConfigError(f"{key}.refill: must be true or false")
    fee_rate = expect_number(spec.get("fee_rate", 0), f"{key}.fee_rate", minimum=ZERO)
    if fee_rate >= ONE:
        raise ConfigError(f"{key}.fee_rate: must be below 1 (a fraction of the notional: "
                            f"0.001 is 0.1 %), got {fee_rate}")
    commission_asset = expect_text(spec.get("commission_asset", quote),
                                   f"{key}.commission_asset")
    return MarketSpec(rules, OrderBook(symbol, asks, bids), fee_rate, refill,
                      "" if commission_asset == quote else commission_asset)


def levels(value: Any, key: str, ascending: bool) -> tuple[Level, ...]:
    """A book side as ``[[price, quantity], ...]``, prices strictly ascending (asks) or
    descending (bids)."""
    found: list[Level] = []
    for n, level in enumerate(expect_list(value, key)):
        where = f"{key}[{n}]"
        if not isinstance(level, list | tuple) or len(level) != 2:
            raise ConfigError(f"{where}: expected [price, quantity]")
        price = expect_number(level[0], f"{where}.price", positive_only=True)
        quantity = expect_number(level[1], f"{where}.quantity", positive_only=True)
        if found and (price <= found[-1].price if ascending else price >= found[-1].price):
            order = "ascending" if ascending else "descending"
            raise ConfigError(f"{where}: prices must be strictly {order}")
        found.append(Level(price, quantity))
    return tuple(found)


