"""``index-solver demo``: a scenario's deposits and orders through the real service path.

The mock Binance is started on a free loopback port with the scenario's markets; the solver's
runtime trades against it through python-binance (REST orders, WebSocket API user stream,
depth streams into local books). Until the chain adapter lands, mints are confirmed by a
stand-in at once. The run ends when no further batch can be planned; orders still open are
expired, and the report compares every lot with the exchange's own trades.
"""

from __future__ import annotations

import asyncio
import secrets
from decimal import Decimal
from pathlib import Path

import structlog
from rich.console import Console
from rich.table import Table

from mocks.binance.exchange import MockExchange
from mocks.binance.server import Credentials, MockBinance
from solver.commands import DepositConfirmed, ExpireIndexOrder, SubmitIndexOrder
from solver.engine import Engine
from solver.events import LotOpened
from solver.exchange.connector import BinanceConnector
from solver.exchange.endpoints import ApiKey, local
from solver.instant_mint import InstantMint
from solver.invariants import violations
from solver.inventory import lot_id
from solver.money import ZERO, plain
from solver.orders import MintStatus
from solver.runtime import Runtime, RuntimeSettings
from solver.simulation.run import setup_of
from solver.simulation.scenario import Scenario, load_scenario

QUIET_MS = 2000
"""No new batch for this long, with nothing in flight: the run is over."""


def main(path: Path, console: Console) -> int:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))
    scenario = load_scenario(path)
    return asyncio.run(_demo(scenario, console))


async def _demo(scenario: Scenario, console: Console) -> int:
    key = ApiKey(secrets.token_hex(8), secrets.token_hex(16))  # this run only, never shown
    collateral = {i.collateral for i in scenario.indexes}
    exchange = MockExchange(dict(scenario.markets), {c: Decimal(10) ** 7 for c in collateral})
    server = MockBinance(exchange, Credentials(key.key, key.secret), step_ms=100)
    await server.start()
    connector = BinanceConnector(local(server.port), key)
    await connector.start()
    engine = setup_of(scenario).build()
    runtime = Runtime(engine, connector, settings=RuntimeSettings(plan_every_ms=200))
    lots: list[LotOpened] = []
    runtime.bus.subscribe(LotOpened, lambda e: lots.append(e.event))  # type: ignore[arg-type]
    InstantMint(runtime.bus, runtime.submit, runtime.clock)
    console.print(f"mock Binance on {server.url}; trading {len(scenario.orders)} orders "
                  f"over python-binance")
    for n, (account, asset, amount) in enumerate(scenario.deposits):
        runtime.submit(DepositConfirmed(runtime.clock(), f"deposit-{n}", account, asset, amount))
    for spec in scenario.orders:
        runtime.submit(SubmitIndexOrder(runtime.clock(), spec.account, spec.id, spec.index,
                                        spec.collateral, max_price=spec.max_price))
    serving = asyncio.create_task(runtime.run())
    try:
        with console.status("trading..."):
            await _until_quiet(engine)
            for order in engine.open_orders():
                runtime.submit(ExpireIndexOrder(runtime.clock(), order.account,
                                                order.client_order_id))
            await _until_settled(engine)
    finally:
        runtime.stop()
        await serving
        await connector.close()
        await server.stop()
    return _report(engine, lots, server, console)


async def _until_quiet(engine: Engine) -> None:
    batches, quiet = -1, 0
    while quiet < QUIET_MS:
        await asyncio.sleep(0.1)
        busy = any(not o.is_done for o in engine.asset_orders.values())
        if busy or len(engine.batches) != batches or not engine.batches:
            batches, quiet = len(engine.batches), 0
        else:
            quiet += 100


async def _until_settled(engine: Engine) -> None:
    while engine.open_orders() or any(
            o.filled_units and o.mint_status is not MintStatus.MINTED
            for o in engine.orders.values()):
        await asyncio.sleep(0.05)


def _report(engine: Engine, lots: list[LotOpened], server: MockBinance,
            console: Console) -> int:
    orders = Table(title="index orders")
    for column in ("account", "order", "status", "collateral", "spent", "units", "mint"):
        orders.add_column(column)
    for o in engine.orders.values():
        orders.add_row(o.account, o.client_order_id, o.status.value, plain(o.collateral),
                       plain(o.spent), plain(o.filled_units), o.mint_status.value)
    console.print(orders)
    trades = server.exchange.trades
    same = sorted(lot.lot_id for lot in lots) == sorted(lot_id(t.symbol, str(t.id))
                                                         for t in trades)
    net = sum((t.qty - t.commission for t in trades), ZERO)
    console.print(f"asset orders {len(engine.asset_orders)}, exchange trades {len(trades)}, "
                  f"lots {len(lots)}: "
                  f"{'every trade recorded once' if same else 'MISMATCH'} "
                  f"(net quantity {plain(net)})")
    problems = violations(engine) + ([] if same else ["lots differ from the exchange's trades"])
    console.print("invariants: ok" if not problems else f"invariants: {problems}")
    return 0 if not problems else 1
