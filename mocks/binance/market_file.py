"""The mock exchange's market file: books and filters per symbol (the ``markets`` table of a
scenario), the account's starting balances and the market maker's walk.

    [balances]
    USDC = "1000000"

    [market_maker]
    step_ms = 100          # how often the books move; 0 keeps them still
    max_walk_ticks = 2     # each step moves a book by up to this many ticks either way

    [markets.A1]
    symbol = "A1USDC"
    asks = [["100.00", "50"], ["100.50", "40"]]
    bids = [["99.90", "50"]]
    tick_size = "0.01"
    ...
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from solver.config.fields import (
    ConfigError,
    expect_number,
    expect_table,
    expect_whole,
    read_file,
    reject_unknown,
)
from solver.config.market_files import MarketSpec, parse_markets
from solver.core.money import ZERO


@dataclass(frozen=True, slots=True)
class MarketFile:
    markets: dict[str, MarketSpec]
    balances: dict[str, Decimal]
    step_ms: int = 100
    max_walk_ticks: int = 2


def load_market_file(path: Path) -> MarketFile:
    return parse_market_file(read_file(path))


def parse_market_file(data: Any) -> MarketFile:
    for key in data:
        if key not in ("markets", "balances", "market_maker"):
            raise ConfigError(f"{key}: unknown key (known: balances, market_maker, markets)")
    if not isinstance(data.get("markets"), dict) or not data["markets"]:
        raise ConfigError("markets: required, a table with one entry per asset")
    balances = {str(asset): expect_number(amount, f"balances.{asset}")
                for asset, amount in expect_table(data.get("balances", {}), "balances").items()}
    for asset, amount in balances.items():
        if amount < ZERO:
            raise ConfigError(f"balances.{asset}: must not be negative")
    maker = expect_table(data.get("market_maker", {}), "market_maker")
    reject_unknown(maker, {"step_ms", "max_walk_ticks"}, "market_maker")
    return MarketFile(parse_markets(data["markets"]), balances,
                      expect_whole(maker.get("step_ms", 100), "market_maker.step_ms",
                                   0, 86_400_000),
                      expect_whole(maker.get("max_walk_ticks", 2), "market_maker.max_walk_ticks",
                                   0, 1_000_000))
