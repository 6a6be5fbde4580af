"""The exchange path on loopback: order intent -> exchange ack latency, and sustained orders
per second through the rate limiter, against the mock Binance via python-binance.

Latency: one order at a time, from ``Execution.send`` (the engine's request reaching the
adapter) to the ``AssetOrderAccepted`` fact it produces (the exchange's answer parsed and
tracked). Throughput: a burst of orders sent concurrently under the exchange's ORDERS limit;
the limiter must hold them to the limit (no 429) and the figure is the rate achieved.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import structlog

from benchmarks.figures import percentiles
from mocks.binance.exchange import MockExchange
from mocks.binance.limits import RateLimits
from mocks.binance.market_file import load_market_file
from mocks.binance.server import Credentials, MockBinance
from solver.core.commands import AssetOrderAccepted, Input
from solver.core.events import AssetOrderRequested
from solver.core.model import Side
from solver.exchange.connector import BinanceConnector
from solver.exchange.endpoints import ApiKey, local
from solver.exchange.execution import Execution

MARKETS = Path(__file__).resolve().parent.parent / "examples" / "markets" / "basic.toml"
KEY = ApiKey("bench-key", "bench-secret")


def request(n: int) -> AssetOrderRequested:
    # a small IOC buy that crosses the best ask: the answer is an ack with one fill
    return AssetOrderRequested(n, f"bench-{n}", 1, "A1USDC", Side.BUY, Decimal("100.50"),
                               Decimal("0.1"))


async def measure(latency_orders: int, burst_orders: int, orders_per_10s: int) -> None:
    market = load_market_file(MARKETS)
    exchange = MockExchange(market.markets, {"USDC": Decimal(10) ** 9})
    limits = RateLimits(weight_per_minute=1_000_000, orders_per_10s=orders_per_10s,
                        orders_per_day=10**9)
    server = MockBinance(exchange, Credentials(KEY.key, KEY.secret), limits=limits, step_ms=5)
    await server.start()
    connector = BinanceConnector(local(server.port), KEY)
    await connector.start()
    acked: dict[int, float] = {}

    def submit(fact: Input) -> None:
        if isinstance(fact, AssetOrderAccepted):
            acked[fact.asset_order_id] = time.perf_counter()

    execution = Execution(connector, submit)
    samples = []
    for n in range(latency_orders):
        start = time.perf_counter()
        await execution.send(request(n))
        samples.append(acked[n] - start)
    print(f"intent -> ack, one at a time: {percentiles(samples)}")

    await asyncio.sleep(10 - time.time() % 10)  # start the burst at a fresh ORDERS window
    first = latency_orders
    start = time.perf_counter()
    await asyncio.gather(*(execution.send(request(first + n)) for n in range(burst_orders)))
    elapsed = time.perf_counter() - start
    allowed = connector.limiter.pools[1].limit if len(connector.limiter.pools) > 1 else 0
    print(f"burst of {burst_orders} under ORDERS {orders_per_10s}/10 s (limiter allows "
          f"{allowed}/10 s): {burst_orders / elapsed:.1f} orders/s over {elapsed:.1f} s, "
          f"429s: {limits.violations}, orders acked: {len(acked) - latency_orders}")
    limits.orders.limit = 10**9
    connector.limiter.configure([])
    first = len(acked)
    start = time.perf_counter()
    await asyncio.gather(*(execution.send(request(first + n)) for n in range(burst_orders)))
    elapsed = time.perf_counter() - start
    print(f"burst of {burst_orders} with no order limit: {burst_orders / elapsed:.1f} orders/s")
    await connector.close()
    await server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=1000, help="orders for the latency run")
    parser.add_argument("--burst", type=int, default=600, help="orders in the burst")
    parser.add_argument("--orders-per-10s", type=int, default=200,
                        help="the mock's ORDERS limit per 10 s")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))
    asyncio.run(measure(args.orders, args.burst, args.orders_per_10s))


if __name__ == "__main__":
    main()
