"""A mock Binance for this machine's tests, demos and benchmarks: the example markets, a
fixed API key, served on a free loopback port while a block runs."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

from mocks.binance.exchange import MockExchange
from mocks.binance.faults import Faults
from mocks.binance.limits import RateLimits
from mocks.binance.market_file import load_market_file
from mocks.binance.server import Credentials, MockBinance
from solver.exchange.endpoints import ApiKey

MARKETS = Path(__file__).parent.parent.parent / "examples" / "markets" / "basic.toml"
KEY = ApiKey("test-key", "test-secret")


def mock_server(faults: Faults | None = None, limits: RateLimits | None = None, seed: int = 1,
                step_ms: int = 0, balances: dict[str, Decimal] | None = None) -> MockBinance:
    market_file = load_market_file(MARKETS)
    exchange = MockExchange(market_file.markets, balances or market_file.balances, seed=seed)
    return MockBinance(exchange, Credentials(KEY.key, KEY.secret), limits=limits,
                       faults=faults, seed=seed, step_ms=step_ms)


@contextlib.asynccontextmanager
async def running(server: MockBinance) -> AsyncIterator[MockBinance]:
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
