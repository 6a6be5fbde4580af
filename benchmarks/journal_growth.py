"""How fast the journal grows while nothing trades: the service on the demo stack (the mock
Binance's books moving every 100 ms, the embedded chain) with, for the first half of the run,
no order at all, then one index order resting below the market (a limit order no plan can
serve until prices fall).

Prints, for each half, the transactions and bytes journaled per minute, by input type. The
journal must grow with what happens to orders, not with time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import sqlite3
import sys
import tempfile
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import structlog

ROOT = Path(__file__).resolve().parent.parent


def growth(journal: Path, after: int) -> tuple[int, Counter[str], Counter[str]]:
    """The last transaction number, and per input type the transactions and bytes after
    transaction ``after``."""
    with contextlib.closing(sqlite3.connect(f"file:{journal}?mode=ro", uri=True)) as db:
        rows = db.execute("SELECT number, input, events FROM transactions WHERE number > ?",
                          (after,)).fetchall()
        last = db.execute("SELECT coalesce(max(number), 0) FROM transactions").fetchone()[0]
    count: Counter[str] = Counter()
    size: Counter[str] = Counter()
    for _, data, events in rows:
        kind = json.loads(data)["type"]
        count[kind] += 1
        size[kind] += len(data) + len(events)
    return last, count, size


async def measure(seconds: float) -> list[tuple[str, Counter[str], Counter[str]]]:
    from fix_gateway.config import Account, FixSettings
    from fix_gateway.passwords import hash_password
    from mocks.binance.exchange import MockExchange
    from mocks.binance.server import Credentials, MockBinance
    from mocks.fix_client import FixClient, SessionConfig, messages
    from mocks.ports import free_port
    from solver.demo import FEE_BOUND_BPS, deployed_chain, deposit, signing_wallets
    from solver.exchange.endpoints import ApiKey, local
    from solver.service.order_signing import order_signing
    from solver.service.service import running_service
    from solver.simulation.run import setup_of
    from solver.simulation.scenario import load_scenario

    scenario = load_scenario(ROOT / "examples" / "scenarios" / "basic.toml")
    key = ApiKey(secrets.token_hex(8), secrets.token_hex(16))
    chain = await deployed_chain(scenario.indexes, ["user"])
    await deposit(chain, "user", Decimal(1000))
    exchange = MockExchange(dict(scenario.markets), {"USDC": Decimal(10) ** 9})
    server = MockBinance(exchange, Credentials(key.key, key.secret), step_ms=100)
    await server.start()
    password = secrets.token_urlsafe(12)
    halves = []
    try:
        with tempfile.TemporaryDirectory() as store:
            journal = Path(store) / "journal.db"
            setup = setup_of(scenario)
            fix = FixSettings(free_port(), "SOLVER", Path(store), (
                Account("user", "USER", hash_password(password)),),
                signing=order_signing(chain.deployment, setup, chain.wallets.items()))
            async with running_service(setup, fix, local(server.port), key,
                                       journal_path=journal, chain=chain):
                client = FixClient(SessionConfig("127.0.0.1", fix.port, "USER", "SOLVER",
                                                 "USER", password))
                await client.connect()
                await client.next_message(30)  # the deposit's CollateralReport
                start, _, _ = growth(journal, 0)
                await asyncio.sleep(seconds / 2)
                middle, count, size = growth(journal, start)
                halves.append(("no order", count, size))
                signed = signing_wallets(chain)["user"].sign(
                    "resting", "SY2", Decimal(40), Decimal(1),
                    datetime.now(UTC) + timedelta(days=1), FEE_BOUND_BPS)
                await client.send(messages.new_order("resting", "SY2", Decimal(40),
                                                     signed=signed))
                await asyncio.sleep(seconds / 2)
                _, count, size = growth(journal, middle)
                halves.append(("one order resting", count, size))
                await client.logout()
    finally:
        await server.stop()
    return halves


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    per_minute = 60 / (args.seconds / 2)
    for label, count, size in asyncio.run(measure(args.seconds)):
        total = sum(count.values())
        print(f"{label}: {total * per_minute:.0f} transactions/min, "
              f"{sum(size.values()) * per_minute / 1024:.1f} KiB/min")
        for kind, n in count.most_common():
            print(f"  {kind:<24} {n * per_minute:>8.0f}/min {size[kind] * per_minute / 1024:>9.1f}"
                  " KiB/min")


if __name__ == "__main__":
    main()
