"""``mock-binance``: the mock exchange as a service on loopback.

API key and secret come from ``BINANCE_API_KEY`` / ``BINANCE_API_SECRET``, the variables the
connector reads, so one environment serves both sides. ``--faults`` names a TOML or JSON file
of switches (see ``mocks.binance.faults.Faults``); ``POST /mock/faults`` changes them live.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from mocks.binance.exchange import MockExchange
from mocks.binance.faults import Faults
from mocks.binance.market_file import load_market_file
from mocks.binance.server import Credentials, MockBinance
from solver.config.fields import ConfigError, read_file
from solver.exchange.endpoints import ApiKey
from solver.plumbing.logs import configure_json_logs

EXIT_BAD_INPUT = 2


def cli(argv: Sequence[str] | None = None) -> int:
    """``mock-binance``: serve the mock Binance Spot exchange on 127.0.0.1 until a signal.
    Exit status: 0 stopped by a signal, 2 bad market or faults file or missing keys."""
    parser = argparse.ArgumentParser(prog="mock-binance", description=cli.__doc__)
    parser.add_argument("--port", type=int, default=0, help="TCP port (0: any free port)")
    parser.add_argument("--market", type=Path, required=True, metavar="MARKET_FILE",
                        help="books, filters and balances, e.g. examples/markets/basic.toml")
    parser.add_argument("--seed", type=int, default=1, help="seed of the market maker's walk")
    parser.add_argument("--faults", type=Path, metavar="FAULTS",
                        help="TOML or JSON file of fault switches")
    args = parser.parse_args(argv)
    return main(args.port, args.market, args.seed, args.faults)


def main(port: int, market: Path, seed: int, faults_path: Path | None) -> int:
    try:
        market_file = load_market_file(market)
        faults = Faults.from_mapping(read_file(faults_path)) if faults_path else Faults()
        key = ApiKey.from_env()
    except (ConfigError, ValueError, OSError) as error:
        print(f"mock-binance: {error}", file=sys.stderr)
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
