"""``index-solver mock-binance``: the mock exchange as a service on loopback.

API key and secret come from ``BINANCE_API_KEY`` / ``BINANCE_API_SECRET``, the variables the
connector reads, so one environment serves both sides. ``--faults`` names a TOML or JSON file
of switches (see ``mocks.binance.faults.Faults``); ``POST /mock/faults`` changes them live.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from mocks.binance.exchange import MockExchange
from mocks.binance.faults import Faults
from mocks.binance.market_file import load_market_file
from mocks.binance.server import Credentials, MockBinance
from solver.config.fields import ScenarioError
from solver.exchange.endpoints import ApiKey
from solver.plumbing.logs import configure_json_logs
from solver.simulation.scenario import read_file

EXIT_BAD_INPUT = 2


def main(port: int, market: Path, seed: int, faults_path: Path | None) -> int:
    try:
        market_file = load_market_file(market)
        faults = Faults.from_mapping(read_file(faults_path)) if faults_path else Faults()
        key = ApiKey.from_env()
    except (ScenarioError, ValueError, OSError) as error:
        print(f"index-solver mock-binance: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    configure_json_logs()
    exchange = MockExchange(market_file.markets, market_file.balances, seed,
                            market_file.max_walk_ticks)
    server = MockBinance(exchange, Credentials(key.key, key.secret), faults=faults, seed=seed,
                         step_ms=market_file.step_ms)
    asyncio.run(_serve(server, port))
    return 0


async def _serve(server: MockBinance, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await server.start(port)
    await stop.wait()
    await server.stop()
