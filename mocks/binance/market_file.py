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

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from solver.index_config import decimal
from solver.simulation.scenario import MarketSpec, ScenarioError, parse_markets, read_file


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
            raise ScenarioError(f"{key}: unknown key (known: balances, market_maker, markets)")
    if not isinstance(data.get("markets"), dict) or not data["markets"]:
        raise ScenarioError("markets: required, a table with one entry per asset")
    balances = {}
    for asset, amount in _table(data.get("balances", {}), "balances").items():
        value = decimal(amount, _fail(f"balances.{asset}"))
        if value < 0:
            raise ScenarioError(f"balances.{asset}: must not be negative")
        balances[str(asset)] = value
    maker = _table(data.get("market_maker", {}), "market_maker")
    for key in maker:
        if key not in ("step_ms", "max_walk_ticks"):
            raise ScenarioError(f"market_maker.{key}: unknown key (known: max_walk_ticks, "
                                "step_ms)")
    return MarketFile(parse_markets(data["markets"]), balances,
                      _whole(maker.get("step_ms", 100), "market_maker.step_ms"),
                      _whole(maker.get("max_walk_ticks", 2), "market_maker.max_walk_ticks"))


def _fail(key: str) -> Callable[[str], ScenarioError]:
    return lambda problem: ScenarioError(f"{key}: {problem}")


def _table(value: Any, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ScenarioError(f"{key}: expected a table of keys")
    return value


def _whole(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 86_400_000:
        raise ScenarioError(f"{key}: must be a whole number, 0 or more")
    return value
