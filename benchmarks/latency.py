"""How fast an order goes through, one order at a time (low load): NewOrderSingle received ->
every asset order of its batch sent, and the exchange's fill received -> the FIX fill report
sent, measured inside the service (``Probes``); and the same two end to end, from the client's
send to the exchange's matching engine and from the exchange's fill to the client's read.

The service (QuickFIX acceptor, the writer with its journal fsynced per commit, the planner,
the execution over python-binance) runs in this process; the mock Binance and the simplefix
client each in a child process of their own, as the exchange and a client would. End-to-end
times are the machine's wall clock (``time.time_ns``) on both sides:

- sent: the client writes the NewOrderSingle; the batch's asset orders reach the mock's
  matching engine (after the HTTP hop, so slower than "left the solver"); the figure is the
  last asset order of the order's first batch;
- the mock fills each IOC order as it places it, so the fill time is its placing time; the
  client reading the first ExecutionReport with a fill (150=F) ends the second figure.

Mints are confirmed by the test double (no chain): neither figure includes a settlement. The
mock's order limit is lifted: at Binance's (100 orders per 10 s) a two-asset index allows 5
index orders a second one at a time, and the limiter would hold orders back (that bound is
stated in ``docs/performance.md``).
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
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import structlog

from benchmarks.figures import percentiles

ROOT = Path(__file__).resolve().parent.parent
GATEWAY, PASSWORD = "SOLVER", "benchmark-password"
ORDER = Decimal("100")
WARM_UP = 50


def client_side(port: int, orders: int, results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    results.put(asyncio.run(_one_at_a_time(port, orders)))


async def _one_at_a_time(port: int, orders: int) -> dict[str, tuple[int, int]]:
    """Per ClOrdID: when its NewOrderSingle was written and its first fill report read."""
    from mocks.fix_client import FixClient, SessionConfig, messages

    client = FixClient(SessionConfig("127.0.0.1", port, "ALICE", GATEWAY, "ALICE", PASSWORD))
    await client.connect()
    times = {}
    for n in range(-WARM_UP, orders):
        cl_ord_id = f"l{n}"
        sent = time.time_ns()
        await client.send(messages.new_order(cl_ord_id, "SY2", ORDER))
        while True:
            message = await client.next_message(30)
            if message.get(150) == b"F" and message.get(11) == cl_ord_id.encode():
                break
        if n >= 0:
            times[cl_ord_id] = (sent, time.time_ns())
        await client.send(messages.cancel(f"x{n}", cl_ord_id, "SY2"))  # the rest, if any
        while (await client.next_message(30)).get(11) != f"x{n}".encode():
            pass
    await client.logout()
    return times


def exchange_side(port_out: Any, stop: Any, placed_out: Any) -> None:
    """The mock Binance in a process of its own, as the exchange is: it reports when it
    placed (and so filled) each order."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    asyncio.run(_exchange(port_out, stop, placed_out))


async def _exchange(port_out: Any, stop: Any, placed_out: Any) -> None:
    from mocks.binance.limits import RateLimits
    from mocks.binance.local import mock_server, running

    placed: dict[str, int] = {}
    # The books refill as they move; Binance's order limit (100 per 10 s, 10 asset orders a
    # second) is lifted: it would make the limiter, not the code, the figure.
    server = mock_server(step_ms=100, balances={"USDC": Decimal(10**12)},
                         limits=RateLimits(orders_per_10s=10**6, orders_per_day=10**8))
    place = server.exchange.place

    def timed_place(params: dict[str, str], now: int) -> Any:
        result = place(params, now)
        placed[params.get("newClientOrderId", "")] = time.time_ns()
        return result

    server.exchange.place = timed_place  # type: ignore[method-assign]
    async with running(server):
        port_out.put(server.port)
        await asyncio.to_thread(stop.wait)
    placed_out.put(placed)


async def serve(orders: int) -> dict[str, Any]:
    from fix_gateway.config import Account, FixSettings
    from fix_gateway.passwords import hash_password
    from mocks.binance.local import KEY
    from mocks.ports import free_port
    from solver.exchange.endpoints import local
    from solver.journal.store import Journal
    from solver.service.instant_mint import InstantMint, credit
    from solver.service.runtime import RuntimeSettings
    from solver.service.service import running_service
    from solver.simulation.run import setup_of
    from solver.simulation.scenario import load_scenario

    setup = setup_of(load_scenario(ROOT / "examples" / "scenarios" / "basic.toml"))
    probes = Probes()
    probes.install()
    context = multiprocessing.get_context("spawn")
    port_queue, placed_queue, results = context.Queue(), context.Queue(), context.Queue()
    stop = context.Event()
    exchange = context.Process(target=exchange_side, args=(port_queue, stop, placed_queue))
    exchange.start()
    exchange_port = await asyncio.to_thread(port_queue.get, True, 60)
    with tempfile.TemporaryDirectory() as tmp:
        fix = FixSettings(free_port(), GATEWAY, Path(tmp) / "fix-store",
                          (Account("alice", "ALICE", hash_password(PASSWORD)),))
        async with running_service(setup, fix, local(exchange_port), KEY,
                                   Path(tmp) / "journal.db", RuntimeSettings()) as service:
            InstantMint(service.runtime.bus, service.runtime.submit, service.runtime.clock)
            credit(service.runtime.submit, service.runtime.clock,
                   [("alice", "USDC", ORDER * (orders + WARM_UP + 10))])
            child = context.Process(target=client_side, args=(fix.port, orders, results))
            child.start()
            times = await asyncio.to_thread(results.get, True, 1800)
            await asyncio.to_thread(child.join, 30)
        stop.set()
        placed = await asyncio.to_thread(placed_queue.get, True, 60)
        await asyncio.to_thread(exchange.join, 30)
        with Journal.open(Path(tmp) / "journal.db") as journal:
            batches = first_batches(journal)
    return {"times": times, "placed": placed, "batches": batches, "probes": probes}


class Probes:
    """Timestamps inside the service, at the points the goals name: QuickFIX hands the
    NewOrderSingle to the gateway (``fromApp``); an asset order is handed to python-binance
    (``place``); the exchange's answer with the fills reaches the execution (``_apply``); the
    fill ExecutionReport is handed to QuickFIX (``Outbound.send``). Wrapped around the service's own
    methods for this run only."""

    def __init__(self) -> None:
        self.received: dict[str, int] = {}
        self.sent: dict[str, int] = {}
        self.filled: dict[str, int] = {}
        self.reported: dict[str, int] = {}

    def install(self) -> None:
        from fix_gateway.bridge import Bridge
        from fix_gateway.outbound import Outbound
        from solver.exchange.connector import BinanceConnector
        from solver.exchange.execution import Execution

        from_app, place, apply, send = (Bridge.fromApp, BinanceConnector.place,
                                        Execution._apply, Outbound.send)
        probes = self

        def received(bridge: Any, message: Any, session: Any) -> None:
            if message.getHeader().getField(35) == "D":
                probes.received.setdefault(message.getField(11), time.time_ns())
            from_app(bridge, message, session)

        async def placing(connector: Any, request: Any) -> Any:
            probes.sent[request.client_order_id] = time.time_ns()
            return await place(connector, request)

        def applying(execution: Any, report: Any, trades: Any = ()) -> None:
            if trades:
                probes.filled.setdefault(report.client_order_id, time.time_ns())
            apply(execution, report, trades)

        def sending(outbound: Any, session: str, report: Any) -> None:
            send(outbound, session, report)
            if report.msg_type == "8" and report.get(150) == "F":
                probes.reported.setdefault(report.get(11) or "", time.time_ns())

        Bridge.fromApp = received  # type: ignore[method-assign]
        BinanceConnector.place = placing  # type: ignore[method-assign]
        Execution._apply = applying  # type: ignore[method-assign]
        Outbound.send = sending  # type: ignore[method-assign]


def first_batches(journal: Any) -> dict[str, list[str]]:
    """Per ClOrdID: the exchange client order ids of its first batch's asset orders."""
    from solver.core import events as ev

    names: dict[int, str] = {}
    first: dict[str, int] = {}
    requested: dict[int, list[str]] = {}
    for transaction in journal.transactions():
        for event in (e.event for e in transaction.events):
            if isinstance(event, ev.IndexOrderAccepted):
                names[event.order_id] = event.client_order_id
            elif isinstance(event, ev.BatchPlanned):
                for engagement in event.engagements:
                    first.setdefault(names[engagement.order_id], event.batch_id)
            elif isinstance(event, ev.AssetOrderRequested):
                requested.setdefault(event.batch_id, []).append(event.client_order_id)
    return {name: requested[batch] for name, batch in first.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=1000)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    outcome = asyncio.run(serve(args.orders))
    to_sent, to_report, inside_sent, inside_report = [], [], [], []
    probes = outcome["probes"]
    for name, (sent, reported) in outcome["times"].items():
        asset_orders = outcome["batches"][name]
        at_exchange = max(outcome["placed"][c] for c in asset_orders)
        to_sent.append((at_exchange - sent) / 1e9)
        to_report.append((reported - at_exchange) / 1e9)
        inside_sent.append((max(probes.sent[c] for c in asset_orders)
                            - probes.received[name]) / 1e9)
        inside_report.append((probes.reported[name]
                              - max(probes.filled[c] for c in asset_orders)) / 1e9)
    print(f"NewOrderSingle received -> every asset order of its batch sent (in the service): "
          f"{percentiles(inside_sent)}")
    print(f"exchange fill received -> FIX fill report sent (in the service): "
          f"{percentiles(inside_report)}")
    print(f"end to end, client's NewOrderSingle -> every asset order at the exchange: "
          f"{percentiles(to_sent)}")
    print(f"end to end, the exchange's fill -> fill report at the client: "
          f"{percentiles(to_report)}")


if __name__ == "__main__":
    main()
