"""Synthetic indexes, markets and users: deterministic for a given seed."""

from __future__ import annotations

import random
from decimal import Decimal

from solver.config.market_files import MarketSpec
from solver.core.market import Level, MarketRules, OrderBook
from solver.core.model import Constituent, Index
from solver.core.params import SolverParams
from solver.simulation.scenario import OrderSpec, Scenario

TICK, STEP = Decimal("0.01"), Decimal("0.0001")


def assets(count: int) -> list[str]:
    return [f"X{n:03d}" for n in range(count)]


def index(symbol: str, names: list[str], seed: int = 1) -> Index:
    rng = random.Random(seed)
    return Index(symbol, "USDC", tuple(
        Constituent(a, f"{a}USDC", Decimal(rng.randint(1, 5000)).scaleb(-4)) for a in names))


def market(asset: str, seed: int, levels: int = 10, depth: str = "1000",
           fee_rate: str = "0.001", refill: bool = False) -> MarketSpec:
    rng = random.Random(seed)
    price = Decimal(rng.randint(100, 100_000)) * TICK
    asks = []
    for _ in range(levels):
        asks.append(Level(price, Decimal(depth) * Decimal(rng.randint(50, 150)).scaleb(-2)))
        price += TICK * rng.randint(1, 5)
    rules = MarketRules(f"{asset}USDC", asset, "USDC", TICK, STEP, STEP, Decimal(0), Decimal(5))
    return MarketSpec(rules, OrderBook(rules.symbol, tuple(asks)), Decimal(fee_rate), refill)


def scenario(orders: int, asset_count: int, accounts: int = 100, seed: int = 7,
             params: SolverParams | None = None, refill: bool = True) -> Scenario:
    rng = random.Random(seed)
    names = assets(asset_count)
    idx = index("SYN", names, seed)
    markets = {a: market(a, seed + n, refill=refill) for n, a in enumerate(names)}
    users = [f"user{n}" for n in range(accounts)]
    amounts = [Decimal(rng.randint(1_000, 500_000)).scaleb(-2) for _ in range(orders)]
    deposits = tuple((u, "USDC", sum(amounts[n::accounts], Decimal(0)) + 1) for n, u in
                     enumerate(users))
    order_specs = tuple(OrderSpec(users[n % accounts], f"o{n}", "SYN", amounts[n], None)
                        for n in range(orders))
    return Scenario(params or SolverParams(max_orders_per_batch=1000), (idx,), markets,
                    deposits, order_specs, (), (), {"USDC": 6}, max_batches=1_000_000)
