"""The FIX gateway on loopback: NewOrderSingle -> ExecutionReport (new) round trip, and
orders per second sustained.

The service (QuickFIX acceptor, writer with its journal fsynced per commit, runtime, mock
Binance) runs in this process; the simplefix client runs in a child process, as a client
would. The orders rest (a limit below the market), so the figures are the gateway's path:
QuickFIX parse and validation, the hand-over to asyncio, the engine, the journal commit, the
report and its send. Latency: one order at a time. Throughput: N orders pipelined, from the
first send to the last ack.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import structlog

from benchmarks.figures import percentiles

Results = dict[str, object]
ROOT = Path(__file__).resolve().parent.parent
GATEWAY, PASSWORD = "SOLVER", "benchmark-password"
ORDER = Decimal("40")
"""Above the smallest SY2 order the example books allow (about 30.4 USDC)."""


def client_side(port: int, latency_orders: int, burst: int, results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    results.put(asyncio.run(_measure(port, latency_orders, burst)))


async def _measure(port: int, latency_orders: int, burst: int) -> Results:
    from mocks.fix_client import FixClient, SessionConfig, messages

    client = FixClient(SessionConfig("127.0.0.1", port, "ALICE", GATEWAY, "ALICE", PASSWORD))
    await client.connect()

    async def acked() -> None:
        while (await client.next_message(10)).get(150) != b"0":
            pass

    def order(n: int) -> object:
        return messages.new_order(f"b{n}", "SY2", ORDER, ord_type="2", price=Decimal("900"))

    for n in range(200):  # warm up
        await client.send(order(-n - 1))
        await acked()
    samples = []
    for n in range(latency_orders):
        start = time.perf_counter()
        await client.send(order(n))
        await acked()
        samples.append(time.perf_counter() - start)
    start = time.perf_counter()
    waiting = asyncio.create_task(_acks(client, burst))
    for n in range(burst):
        await client.send(order(latency_orders + n))
    await waiting
    elapsed = time.perf_counter() - start
    await client.logout()
    return {"latency": samples, "burst": burst, "elapsed": elapsed}


async def _acks(client: object, count: int) -> None:
    for _ in range(count):
        while (await client.next_message(30)).get(150) != b"0":  # type: ignore[attr-defined]
            pass


async def serve(latency_orders: int, burst: int) -> Results:
    from fix_gateway.config import Account, FixSettings
    from fix_gateway.passwords import hash_password
    from mocks.binance.local import KEY, mock_server, running
    from mocks.ports import free_port
    from solver.exchange.endpoints import local
    from solver.service.instant_mint import InstantMint, credit
    from solver.service.runtime import RuntimeSettings
    from solver.service.service import running_service
    from solver.simulation.run import setup_of
    from solver.simulation.scenario import load_scenario

    deposit = ORDER * (latency_orders + burst + 1000)
    setup = setup_of(load_scenario(ROOT / "examples" / "scenarios" / "basic.toml"))
    with tempfile.TemporaryDirectory() as tmp:
        fix = FixSettings(free_port(), GATEWAY, Path(tmp) / "fix-store",
                          (Account("alice", "ALICE", hash_password(PASSWORD)),))
        # No planning while measuring: thousands of resting orders would be re-planned on
        # every tick, and that is the planner's cost (benchmarks/plan_batch.py), not the
        # gateway's.
        quiet = RuntimeSettings(plan_every_ms=3_600_000, gather_ms=None)
        async with running(mock_server()) as server, running_service(
                setup, fix, local(server.port), KEY, Path(tmp) / "journal.db",
                quiet) as service:
            # no chain here: the deposit credited and the mints confirmed by the doubles
            InstantMint(service.runtime.bus, service.runtime.submit, service.runtime.clock)
            credit(service.runtime.submit, service.runtime.clock, [("alice", "USDC", deposit)])
            context = multiprocessing.get_context("spawn")
            results = context.Queue()
            child = context.Process(target=client_side,
                                    args=(fix.port, latency_orders, burst, results))
            child.start()
            outcome: Results = await asyncio.to_thread(results.get, True, 600)
            await asyncio.to_thread(child.join, 30)
            return outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=1000, help="one-at-a-time orders")
    parser.add_argument("--burst", type=int, default=5000, help="pipelined orders")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    outcome = asyncio.run(serve(args.orders, args.burst))
    latency = outcome["latency"]
    assert isinstance(latency, list)
    print(f"NewOrderSingle -> ExecutionReport new, one at a time: {percentiles(latency)}")
    burst, elapsed = outcome["burst"], outcome["elapsed"]
    assert isinstance(burst, int) and isinstance(elapsed, float)
    print(f"{burst} orders pipelined: {burst / elapsed:,.0f} orders/s ({elapsed:.2f} s)")


if __name__ == "__main__":
    main()
