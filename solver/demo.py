"""``index-solver demo``: a scenario's orders through the real service path, end to end.

The mock Binance is started on a free loopback port with the scenario's markets; the solver's
runtime trades against it through python-binance (REST orders, WebSocket API user stream,
depth streams into local books). The orders come in over FIX: the QuickFIX gateway runs on a
free loopback port and each account's simplefix client logs on (passwords made for this run),
sends its orders, and prints its reports as they arrive. Until the chain adapter lands,
deposits are credited from the scenario and mints are confirmed by a stand-in at once. The run
ends when no further batch can be planned; each client cancels its orders still open, and the
report compares every lot with the exchange's own trades and every mint with the mint report
its client received.
"""

from __future__ import annotations

import asyncio
import secrets
import tempfile
from decimal import Decimal
from pathlib import Path

import structlog
from rich.console import Console
from rich.table import Table

from fix_gateway.config import Account, FixSettings
from fix_gateway.passwords import hash_password
from fix_gateway.tags import MINT_TX_HASH
from mocks.binance.exchange import MockExchange
from mocks.binance.server import Credentials, MockBinance
from mocks.fix_client import FixClient, SessionConfig
from mocks.fix_client import messages as fix_messages
from mocks.ports import free_port
from solver.core.engine import Engine
from solver.core.events import LotOpened
from solver.core.invariants import violations
from solver.core.inventory import lot_id
from solver.core.money import ZERO, plain
from solver.core.orders import MintStatus
from solver.exchange.endpoints import ApiKey, local
from solver.service.runtime import RuntimeSettings
from solver.service.wiring import running_service
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
    passwords = {a: secrets.token_urlsafe(12) for a in _accounts(scenario)}
    clients: dict[str, FixClient] = {}
    lots: list[LotOpened] = []
    try:
        with tempfile.TemporaryDirectory() as store:
            async with running_service(setup_of(scenario), _fix_settings(Path(store), passwords),
                                       local(server.port), key,
                                       settings=RuntimeSettings(plan_every_ms=200),
                                       deposits=scenario.deposits) as service:
                engine = service.runtime.engine
                service.runtime.bus.subscribe(LotOpened, lambda e: lots.append(e.event))
                console.print(f"mock Binance on {server.url}; {len(scenario.orders)} orders "
                              "over FIX, traded over python-binance")
                clients = await _log_on(service.gateway.settings, passwords)
                await _trade(scenario, engine, clients, console)
                for client in clients.values():
                    await client.logout()
    finally:
        await server.stop()
    return _report(engine, lots, server, clients, console)


async def _trade(scenario: Scenario, engine: Engine, clients: dict[str, FixClient],
                 console: Console) -> None:
    """Send the scenario's orders; when no batch comes any more, cancel what is still open
    and wait until every order is closed and its mint confirmed."""
    printing = [asyncio.create_task(_print_reports(a, c, console)) for a, c in clients.items()]
    for spec in scenario.orders:
        await clients[spec.account].send(fix_messages.new_order(
            spec.id, spec.index, spec.collateral,
            ord_type="1" if spec.max_price is None else "2", price=spec.max_price))
    await _until_quiet(engine)
    for order in engine.open_orders():
        await clients[order.account].send(fix_messages.cancel(
            f"{order.client_order_id}-end", order.current_client_id, order.index))
    await _until_settled(engine)
    for client in clients.values():
        await client.test_request()
    for task in printing:
        task.cancel()


def _accounts(scenario: Scenario) -> list[str]:
    return sorted({account for account, _, _ in scenario.deposits}
                  | {spec.account for spec in scenario.orders})


def _fix_settings(store: Path, passwords: dict[str, str]) -> FixSettings:
    accounts = tuple(Account(a, a, hash_password(p)) for a, p in passwords.items())
    return FixSettings(port=free_port(), comp_id="SOLVER", store=store, accounts=accounts)


async def _log_on(settings: FixSettings, passwords: dict[str, str]) -> dict[str, FixClient]:
    clients = {}
    for account, password in passwords.items():
        client = FixClient(SessionConfig("127.0.0.1", settings.port, account, settings.comp_id,
                                         account, password))
        await client.connect()
        clients[account] = client
    return clients


async def _print_reports(account: str, client: FixClient, console: Console) -> None:
    while True:
        try:
            message = await client.next_message(3600)
        except TimeoutError:
            continue
        console.print(f"[dim]{account:>8}[/dim] {fix_messages.describe(message)}",
                      highlight=False)


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
            clients: dict[str, FixClient], console: Console) -> int:
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
    unreported = _mints_unreported(engine, clients)
    console.print(f"FIX reports received {sum(len(c.received) for c in clients.values())}; "
                  + (f"MISSING mint reports for {unreported}" if unreported
                     else "every mint reported to its client"))
    problems = violations(engine) + ([] if same else ["lots differ from the exchange's trades"])
    problems += [f"no mint report for {o}" for o in unreported]
    console.print("invariants: ok" if not problems else f"invariants: {problems}")
    return 0 if not problems else 1


def _mints_unreported(engine: Engine, clients: dict[str, FixClient]) -> list[str]:
    reported = {(account, (m.get(MINT_TX_HASH) or b"").decode())
                for account, client in clients.items() for m in client.received
                if m.get(150) == b"B"}
    return [o.client_order_id for o in engine.orders.values()
            if o.mint_tx is not None and (o.account, o.mint_tx) not in reported]
