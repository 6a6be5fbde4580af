"""``index-solver demo``: a scenario's orders through the real service path, end to end.

The mock Binance is started on a free loopback port with the scenario's markets; the solver's
runtime trades against it through python-binance (REST orders, WebSocket API user stream,
depth streams into local books). The orders come in over FIX: the QuickFIX gateway runs on a
free loopback port and each account's simplefix client logs on (passwords made for this run),
sends its orders, and prints its reports as they arrive. The chain is embedded (py-evm through
eth-tester, in process): the contracts are deployed from their artifacts, each account's
wallet deposits its collateral into the vault, the solver credits what the vault's events say,
and each mint is a settlement that charges the collateral and mints the index token in one
transaction. The run ends when no further batch can be planned; each client cancels its orders
still open, and the report compares every lot with the exchange's own trades, every mint with
the mint report its client received, and each user's token and vault balances, read back from
the chain, with what the solver recorded.
"""

from __future__ import annotations

import asyncio
import secrets
import tempfile
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import structlog
from eth_account import Account as EthAccount
from rich.console import Console
from rich.table import Table
from web3 import AsyncWeb3
from web3.providers.eth_tester import AsyncEthereumTesterProvider
from web3.types import Wei

from chain.deploy import contract, deploy_local
from chain.settler import SettleSettings
from chain.watcher import WatchSettings, from_units, to_units
from fix_gateway.config import Account, FixSettings
from fix_gateway.passwords import hash_password
from fix_gateway.tags import MINT_QTY, MINT_TX_HASH
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
from solver.service.chain_link import ChainLink
from solver.service.runtime import RuntimeSettings
from solver.service.wiring import running_service
from solver.simulation.run import setup_of
from solver.simulation.scenario import Scenario, load_scenario

WITHDRAWAL_DELAY_S = 3600
QUIET_MS = 2000
"""No new batch for this long, with nothing in flight: the run is over."""


def main(path: Path, console: Console) -> int:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))
    scenario = load_scenario(path)
    return asyncio.run(_demo(scenario, console))


async def _demo(scenario: Scenario, console: Console) -> int:
    key = ApiKey(secrets.token_hex(8), secrets.token_hex(16))  # this run only, never shown
    chain = await embedded_chain(scenario, _accounts(scenario))
    collateral = {i.collateral for i in scenario.indexes}
    exchange = MockExchange(dict(scenario.markets), {c: Decimal(10) ** 7 for c in collateral})
    server = MockBinance(exchange, Credentials(key.key, key.secret), step_ms=100)
    await server.start()
    passwords = {a: secrets.token_urlsafe(12) for a in _accounts(scenario)}
    clients: dict[str, FixClient] = {}
    lots: list[LotOpened] = []
    try:
        with tempfile.TemporaryDirectory() as store:
            fix = _fix_settings(Path(store), passwords, chain.deployment.chain_id)
            async with running_service(setup_of(scenario), fix,
                                       local(server.port), key,
                                       settings=RuntimeSettings(plan_every_ms=200),
                                       chain=chain) as service:
                engine = service.runtime.engine
                service.runtime.bus.subscribe(LotOpened, lambda e: lots.append(e.event))
                console.print(f"mock Binance on {server.url}; embedded chain, vault "
                              f"{chain.deployment.vault}; {len(scenario.orders)} orders over "
                              "FIX, traded over python-binance")
                clients = await _log_on(service.gateway.settings, passwords)
                await _until_credited(engine, scenario)
                await _trade(scenario, engine, clients, console)
                for client in clients.values():
                    await client.logout()
                on_chain = await _read_back(chain, engine)
    finally:
        await server.stop()
    return _report(engine, lots, server, clients, on_chain, console)


async def embedded_chain(scenario: Scenario, accounts: list[str]) -> ChainLink:
    """The contracts deployed on an in-process chain; each account's wallet (one of the
    chain's unlocked accounts) deposits its scenario deposits into the vault."""
    w3 = AsyncWeb3(AsyncEthereumTesterProvider())
    owner, treasury, *spare = list(await w3.eth.accounts)
    if len(accounts) > len(spare):
        raise ValueError(f"the embedded chain has wallets for {len(spare)} accounts")
    wallets = dict(zip(accounts, spare, strict=False))
    operator = EthAccount.create()
    await w3.eth.wait_for_transaction_receipt(await w3.eth.send_transaction(
        {"from": owner, "to": operator.address, "value": Wei(10**20)}))
    deployment = await deploy_local(w3, owner, operator.address, treasury, WITHDRAWAL_DELAY_S,
                                    {i.symbol: f"{i.symbol} index" for i in scenario.indexes})
    usdc = contract(w3, "MockUSDC", deployment.collateral)
    vault = contract(w3, "CollateralVault", deployment.vault)
    decimals = await usdc.functions.decimals().call()
    for account, _, amount in scenario.deposits:
        units, wallet = to_units(amount, decimals), wallets[account]
        await usdc.functions.mint(wallet, units).transact({"from": wallet})
        await usdc.functions.approve(deployment.vault, units).transact({"from": wallet})
        await w3.eth.wait_for_transaction_receipt(
            await vault.functions.deposit(units, 0).transact({"from": wallet}))
    return ChainLink(w3, deployment, operator, wallets, collateral_decimals=decimals,
                     watch=WatchSettings(confirmations=0, poll_s=0.1),
                     settle=SettleSettings(confirmations=0))


async def _until_credited(engine: Engine, scenario: Scenario) -> None:
    """Orders wait for the vault's deposits to be credited, as a user waits for their
    CollateralReport."""
    wanted: dict[str, Decimal] = {}
    for account, _, amount in scenario.deposits:
        wanted[account] = wanted.get(account, ZERO) + amount
    while any(engine.ledger.balance(a, "USDC").deposited < w for a, w in wanted.items()):
        await asyncio.sleep(0.05)


@dataclass(frozen=True)
class OnChain:
    tokens: dict[str, Decimal]
    """account -> index tokens held, all indexes"""
    vault: dict[str, Decimal]
    """account -> collateral the vault holds for it"""


async def _read_back(chain: ChainLink, engine: Engine) -> OnChain:
    vault = contract(chain.w3, "CollateralVault", chain.deployment.vault)
    tokens, held = {}, {}
    for account, wallet in chain.wallets.items():
        total = 0
        for address in chain.deployment.index_tokens.values():
            total += await contract(chain.w3, "IndexToken", address).functions.balanceOf(
                wallet).call()
        tokens[account] = from_units(total, 18)
        held[account] = from_units(await vault.functions.balances(wallet).call(),
                                   chain.collateral_decimals)
    return OnChain(tokens, held)


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


def _fix_settings(store: Path, passwords: dict[str, str], chain_id: int) -> FixSettings:
    accounts = tuple(Account(a, a, hash_password(p)) for a, p in passwords.items())
    return FixSettings(port=free_port(), comp_id="SOLVER", store=store, accounts=accounts,
                       chain_id=chain_id)


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
            clients: dict[str, FixClient], on_chain: OnChain, console: Console) -> int:
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
    problems += _users(engine, on_chain, _fix_minted(clients), console)
    console.print("invariants: ok" if not problems else f"invariants: {problems}")
    return 0 if not problems else 1


def _fix_minted(clients: dict[str, FixClient]) -> dict[str, Decimal]:
    """Per account: the units its mint reports (ExecType B, MintQty) said were minted."""
    return {account: sum((Decimal((m.get(MINT_QTY) or b"0").decode())
                          for m in client.received if m.get(150) == b"B"), ZERO)
            for account, client in clients.items()}


def _users(engine: Engine, on_chain: OnChain, fix_minted: dict[str, Decimal],
           console: Console) -> list[str]:
    """Per user: what FIX reported and the solver recorded beside what the chain holds; the
    differences."""
    table = Table(title="users: FIX reports, the solver's record and the chain's")
    for column in ("account", "deposited", "spent", "released", "minted (FIX)", "tokens",
                   "vault"):
        table.add_column(column, overflow="fold")
    problems = []
    for account in sorted(on_chain.tokens):
        b = engine.ledger.balance(account, "USDC")
        mine = [o for o in engine.orders.values() if o.account == account]
        released = sum((o.released for o in mine), ZERO)
        units = sum((o.minted_units for o in mine), ZERO)
        reported = fix_minted.get(account, ZERO)
        table.add_row(account, plain(b.deposited), plain(b.spent), plain(released),
                      plain(reported), plain(on_chain.tokens[account]),
                      plain(on_chain.vault[account]))
        if not on_chain.tokens[account] == units == reported:
            problems.append(f"{account}: {on_chain.tokens[account]} tokens on-chain, "
                            f"{units} minted, {reported} reported over FIX")
        if on_chain.vault[account] != b.deposited - b.spent - b.withdrawn:
            problems.append(f"{account}: the vault holds {on_chain.vault[account]}, the "
                            f"ledger says {b.deposited - b.spent - b.withdrawn}")
    console.print(table)
    return problems


def _mints_unreported(engine: Engine, clients: dict[str, FixClient]) -> list[str]:
    reported = {(account, (m.get(MINT_TX_HASH) or b"").decode())
                for account, client in clients.items() for m in client.received
                if m.get(150) == b"B"}
    return [o.client_order_id for o in engine.orders.values()
            if o.mint_tx is not None and (o.account, o.mint_tx) not in reported]
