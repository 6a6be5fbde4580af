"""Sustained orders per second end to end on the demo stack: FIX in (several clients sending
at once), the mock Binance (its books refilling every 100 ms, Binance's order limit of 100
orders per 10 s kept), settlement on the embedded chain (py-evm), as `make demo` runs.

Each user sends all its orders at once; the figures are from the first NewOrderSingle to the
last fill report (every order traded) and to the last mint report (every order settled
on-chain), over the orders that filled. The exchange's order limit bounds batches, not orders
(a batch of any number of orders sends one asset order per asset); the settler sends one
transaction per order, one at a time, which bounds the minted rate.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import tempfile
import time
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import structlog

ROOT = Path(__file__).resolve().parent.parent
ORDER = Decimal("40")


async def measure(users: int, orders: int) -> dict[str, float]:
    from fix_gateway.config import Account, FixSettings
    from fix_gateway.passwords import hash_password
    from mocks.binance.exchange import MockExchange
    from mocks.binance.server import Credentials, MockBinance
    from mocks.fix_client import FixClient, SessionConfig, messages
    from mocks.ports import free_port
    from solver.demo import deployed_chain, deposit
    from solver.exchange.endpoints import ApiKey, local
    from solver.service.service import running_service
    from solver.simulation.run import setup_of
    from solver.simulation.scenario import load_scenario

    scenario = load_scenario(ROOT / "examples" / "scenarios" / "basic.toml")
    # An order closes once less than 2 USDC of it is left (the example's 0.5 keeps a 40 USDC
    # order's last dollar waiting for more orders of its index, and its mint with it).
    setup = setup_of(scenario)
    setup = replace(setup, params=replace(setup.params, dust_threshold=Decimal(2)))
    names = [f"user{n}" for n in range(users)]
    key = ApiKey(secrets.token_hex(8), secrets.token_hex(16))
    chain = await deployed_chain(scenario.indexes, names)
    for name in names:
        await deposit(chain, name, ORDER * (orders + 5))
    exchange = MockExchange(dict(scenario.markets), {"USDC": Decimal(10) ** 9})
    server = MockBinance(exchange, Credentials(key.key, key.secret), step_ms=100)
    await server.start()
    passwords = {n: secrets.token_urlsafe(12) for n in names}
    try:
        with tempfile.TemporaryDirectory() as store:
            fix = FixSettings(free_port(), "SOLVER", Path(store), tuple(
                Account(n, n.upper(), hash_password(p)) for n, p in passwords.items()))
            async with running_service(setup, fix, local(server.port), key,
                                       chain=chain):
                clients = [FixClient(SessionConfig("127.0.0.1", fix.port, n.upper(), "SOLVER",
                                                   n.upper(), p)) for n, p in passwords.items()]
                for client in clients:
                    await client.connect()
                await _until(lambda: all(_count(c, b"BA") for c in clients))
                start = time.perf_counter()
                for n in range(orders):
                    for client in clients:
                        await client.send(messages.new_order(f"o{n}", "SY2", ORDER))
                traded = await _when(lambda: all(_done(c, orders) for c in clients))
                minted = await _when(lambda: all(
                    _count(c, b"8", b"B") == _filled(c) for c in clients))
                filled = sum(_filled(c) for c in clients)
    finally:
        await server.stop()
    return {"orders": users * orders, "filled": filled, "traded_s": traded - start,
            "minted_s": minted - start}


def _count(client: object, msg_type: bytes, exec_type: bytes | None = None) -> int:
    return sum(1 for m in client.received  # type: ignore[attr-defined]
               if m.get(35) == msg_type and (exec_type is None or m.get(150) == exec_type))


def _filled(client: object) -> int:
    """Orders with at least one fill."""
    return len({m.get(11) for m in client.received  # type: ignore[attr-defined]
                if m.get(35) == b"8" and m.get(150) == b"F"})


def _done(client: object, orders: int) -> bool:
    """Every order filled (OrdStatus 2) or closed."""
    last: dict[bytes, bytes] = {}
    for m in client.received:  # type: ignore[attr-defined]
        if m.get(35) == b"8":
            last[m.get(11)] = m.get(39)
    return len(last) >= orders and all(s not in (b"0", b"1") for s in last.values())


async def _until(condition: object, timeout_s: float = 600) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.01)


async def _when(condition: object) -> float:
    await _until(condition)
    return time.perf_counter()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--orders", type=int, default=50, help="per user")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    r = asyncio.run(measure(args.users, args.orders))
    print(f"{r['orders']:.0f} orders from {args.users} FIX clients at once, {r['filled']:.0f} "
          f"filled: all traded after {r['traded_s']:.2f} s ({r['orders'] / r['traded_s']:.0f} "
          f"orders/s), all settled on-chain after {r['minted_s']:.2f} s "
          f"({r['filled'] / r['minted_s']:.1f} orders/s)")


if __name__ == "__main__":
    main()
