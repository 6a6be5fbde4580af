"""``index-solver demo``: a scenario's users through the whole pipeline, end to end.

The mock Binance is started on a free loopback port with the scenario's markets, its books
moving every 100 ms; the solver trades against it through python-binance (REST orders, the
WebSocket API user stream, depth streams into local books). The chain is embedded (py-evm
through eth-tester, in process): the contracts are deployed from their artifacts and each
user's wallet deposits its collateral into the vault; the solver credits what the vault's events
say, and each mint is a settlement that charges the collateral and mints the index token in one
transaction. The users are simplefix clients of the QuickFIX gateway (passwords made for this
run). The first asks for the scenario's quotes; all send their orders; a scenario cancel is
sent once its order has its first fill; when no batch can be planned any more, the orders still
open are cancelled; at the end the last user takes back half of what the vault holds for it
(a withdrawal the solver releases at once: nothing is reserved against it).

Progress shows as it goes; then a table per user of what the solver recorded and what FIX
reported beside the token and vault balances read back from the chain. Exit 0 only when every
lot matches the exchange's own trades, every mint was reported to its client, every user's
balances on the chain agree with the solver's record and FIX, the withdrawal reached the
wallet, and every invariant holds.
"""

from __future__ import annotations

import asyncio
import secrets
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

import simplefix
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from web3 import AsyncWeb3
from web3.providers.eth_tester import AsyncEthereumTesterProvider

from chain.deploy import contract, deploy_local
from chain.settler import SettleSettings
from chain.watcher import WatchSettings, from_units, to_units
from fix_gateway.config import Account, FixSettings
from fix_gateway.passwords import hash_password
from fix_gateway.tags import CUM_CASH_QTY, MINT_QTY, MINT_TX_HASH
from mocks.binance.exchange import MockExchange
from mocks.binance.server import Credentials, MockBinance
from mocks.fix_client import FixClient, SessionConfig
from mocks.fix_client import messages as fix_messages
from mocks.fix_client.wallet import Vault, Wallet
from mocks.ports import free_port
from solver.core.bus import EventBus
from solver.core.engine import Engine
from solver.core.events import (
    BatchPlanned,
    IndexOrderCompleted,
    IndexOrderMinted,
    LotOpened,
    MintRequested,
)
from solver.core.invariants import violations
from solver.core.inventory import lot_id
from solver.core.model import Index
from solver.core.money import ZERO, plain
from solver.core.setup import EngineSetup
from solver.exchange.endpoints import ApiKey, local
from solver.plumbing.tables import readable, table
from solver.service.chain_link import ChainLink
from solver.service.order_signing import order_signing
from solver.service.service import running_service
from solver.simulation.run import setup_of
from solver.simulation.scenario import OrderSpec, Scenario, load_scenario
from solver.views.operations import OperationsStore

WITHDRAWAL_DELAY_S = 3600
QUIET_MS = 2000
"""No new batch for this long, with nothing in flight: the run is over."""
FEE_BOUND_BPS = 50
SLIPPAGE = Decimal("0.05")
SIGNED_FOR = timedelta(hours=1)


def main(path: Path, console: Console, verbose: bool = False) -> int:
    """``verbose``: every FIX report printed as it arrives; else a table of the orders."""
    scenario = load_scenario(path)
    return asyncio.run(_demo(scenario, console, verbose))


async def _demo(scenario: Scenario, console: Console, verbose: bool) -> int:
    key = ApiKey(secrets.token_hex(8), secrets.token_hex(16))  # this run only, never shown
    chain = await embedded_chain(scenario, _accounts(scenario))
    collateral = {i.collateral for i in scenario.indexes}
    exchange = MockExchange(dict(scenario.markets), {c: Decimal(10) ** 7 for c in collateral})
    server = MockBinance(exchange, Credentials(key.key, key.secret), step_ms=100)
    await server.start()
    passwords = {a: secrets.token_urlsafe(12) for a in _accounts(scenario)}
    clients: dict[str, FixClient] = {}
    watch = Watch()
    try:
        with tempfile.TemporaryDirectory() as store:
            fix = _fix_settings(Path(store), passwords, chain, setup_of(scenario))
            async with running_service(setup_of(scenario), fix, local(server.port), key,
                                       chain=chain) as service:
                engine = service.runtime.engine
                watch.attach(service.runtime.bus)
                console.print(f"mock Binance on {server.url} (books moving); embedded chain, "
                              f"vault {chain.deployment.vault}; {len(clients or passwords)} "
                              f"users, {len(scenario.orders)} orders over FIX, each signed by "
                              "its user's wallet")
                clients = await _log_on(service.gateway.settings, passwords)
                wallets = signing_wallets(chain)
                with _progress(console) as progress:
                    await _run(scenario, service.operations, watch, clients, wallets,
                               progress, verbose)
                withdrawal = await _withdraw(chain, service.operations, _accounts(scenario)[-1],
                                             console)
                for client in clients.values():
                    await client.logout()
                on_chain = await _read_back(chain)
    finally:
        await server.stop()
    return _report(engine, watch, server, clients, on_chain, withdrawal, console)


class Watch:
    """What the demo follows on the bus: lots, orders closed, mints asked and made."""

    def __init__(self) -> None:
        self.lots: list[LotOpened] = []
        self.closed: set[int] = set()
        self.mints_asked: set[int] = set()
        self.minted: set[int] = set()
        self.batches = 0

    def attach(self, bus: EventBus) -> None:
        bus.subscribe(LotOpened, lambda e: self.lots.append(e.event))
        bus.subscribe(IndexOrderCompleted, lambda e: self.closed.add(e.event.order_id))
        bus.subscribe(MintRequested, lambda e: self.mints_asked.add(e.event.order_id))
        bus.subscribe(IndexOrderMinted, lambda e: self.minted.add(e.event.order_id))
        bus.subscribe(BatchPlanned, lambda e: self._planned())

    def _planned(self) -> None:
        self.batches += 1


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console)


async def _run(scenario: Scenario, operations: OperationsStore, watch: Watch,
               clients: dict[str, FixClient], wallets: dict[str, Wallet], progress: Progress,
               verbose: bool) -> None:
    """Deposits credited, quotes, orders, cancels; then the orders still open cancelled and
    every mint settled."""
    accounts = {account for account, _, _ in scenario.deposits}
    credited = progress.add_task("deposits credited", total=len(accounts))

    def all_credited() -> bool:
        done = sum(1 for (a, _), b in operations.view().balances.items()
                   if a in accounts and b.deposited)
        progress.update(credited, completed=done)
        return done == len(accounts)

    await _until(all_credited)
    printing = [asyncio.create_task(_print_reports(a, c, progress.console))
                for a, c in clients.items() if verbose]
    first = clients[min(clients)]
    for n, (index, amount) in enumerate(scenario.quotes, 1):
        await first.send(fix_messages.quote_request(f"q{n}", index, amount))
    closed = progress.add_task("orders closed", total=len(scenario.orders))
    settled = progress.add_task("settlements mined", total=None)
    deadline = datetime.now(UTC) + SIGNED_FOR
    for spec in scenario.orders:
        await clients[spec.account].send(
            _signed_order(scenario, spec, wallets[spec.account], deadline))
    cancels = [asyncio.create_task(_cancel_after_first_fill(clients[c.account], c.id, index))
               for c in scenario.cancels
               for index in [next(o.index for o in scenario.orders if o.id == c.id)]]

    def shown() -> None:
        progress.update(closed, completed=len(watch.closed))
        progress.update(settled, completed=len(watch.minted), total=len(watch.mints_asked))

    await _until_quiet(operations, watch, shown)
    await asyncio.gather(*cancels)
    ending = [(account, client, order) for account, client in clients.items()
              for order in scenario.orders
              if order.account == account and order.id in _open_orders(client)]
    if ending:
        progress.console.print(
            "no batch for 2 s: the users cancel what is left of their open orders ("
            + ", ".join(order.id for _, _, order in ending) + "); what they bought is minted")
    for _, client, order in ending:
        await client.send(fix_messages.cancel(f"{order.id}-end", order.id, order.index))
    def all_settled() -> bool:
        shown()
        return (len(watch.closed) == len(scenario.orders) - _rejected(clients)
                and watch.minted == watch.mints_asked)

    await _until(all_settled)
    for client in clients.values():
        await client.test_request()
    for task in printing:
        task.cancel()


def _open_orders(client: FixClient) -> set[str]:
    """The orders whose last ExecutionReport says they are open (OrdStatus 0 or 1)."""
    status: dict[str, bytes] = {}
    for m in client.received:
        if m.get(35) == b"8":
            status[(m.get(41) or m.get(11) or b"").decode()] = m.get(39) or b""
    return {order for order, s in status.items() if s in (b"0", b"1")}


def _rejected(clients: dict[str, FixClient]) -> int:
    return sum(1 for c in clients.values() for m in c.received
               if m.get(35) == b"8" and m.get(150) == b"8")


async def _cancel_after_first_fill(client: FixClient, cl_ord_id: str, index: str) -> None:
    await _until(lambda: any(m.get(11) == cl_ord_id.encode() and m.get(150) == b"F"
                             for m in client.received))
    await client.send(fix_messages.cancel(f"{cl_ord_id}-cancel", cl_ord_id, index))


async def _until(condition: Callable[[], object], timeout_s: float = 300) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.05)


async def _withdraw(chain: ChainLink, operations: OperationsStore, account: str,
                    console: Console) -> Withdrawal:
    """``account`` asks the vault for half of what it holds; the solver releases it."""
    vault = contract(chain.w3, "CollateralVault", chain.deployment.vault)
    usdc = contract(chain.w3, "MockUSDC", chain.deployment.collateral)
    wallet = chain.wallets[account]
    held = await vault.functions.balances(wallet).call()
    before = await usdc.functions.balanceOf(wallet).call()
    amount = held // 2
    await chain.w3.eth.wait_for_transaction_receipt(
        await vault.functions.request_withdrawal(amount).transact({"from": wallet}))
    asked = from_units(amount, chain.collateral_decimals)
    console.print(f"{account} asks the vault for {plain(asked)} USDC back")
    await _until(lambda: any(a == account and b.withdrawn == asked
                             for (a, _), b in operations.view().balances.items()), 60)
    paid = from_units(await usdc.functions.balanceOf(wallet).call() - before,
                      chain.collateral_decimals)
    console.print(f"released by the solver at once: {plain(paid)} USDC back in {account}'s "
                  "wallet")
    return Withdrawal(account, asked, paid)


@dataclass(frozen=True)
class Withdrawal:
    account: str
    asked: Decimal
    paid: Decimal
    """What reached the wallet."""


async def embedded_chain(scenario: Scenario, accounts: list[str]) -> ChainLink:
    """The contracts deployed on an in-process chain; each account's wallet (one of the
    chain's unlocked accounts) deposits its scenario deposits into the vault."""
    link = await deployed_chain(scenario.indexes, accounts)
    for account, _, amount in scenario.deposits:
        await deposit(link, account, amount)
    return link


async def deployed_chain(indexes: Iterable[Index], accounts: list[str]) -> ChainLink:
    """The contracts deployed on an in-process chain (py-evm), a wallet for each account."""
    w3 = AsyncWeb3(AsyncEthereumTesterProvider())
    owner, treasury, *spare = list(await w3.eth.accounts)
    if len(accounts) > len(spare):
        raise ValueError(f"the embedded chain has wallets for {len(spare)} accounts")
    wallets = dict(zip(accounts, spare, strict=False))
    deployment, operator = await deploy_local(
        w3, owner, treasury, WITHDRAWAL_DELAY_S, {i.symbol: f"{i.symbol} index" for i in indexes})
    decimals = await contract(w3, "MockUSDC", deployment.collateral).functions.decimals().call()
    return ChainLink(w3, deployment, operator, wallets, collateral_decimals=decimals,
                     watch=WatchSettings(confirmations=0, poll_s=0.1),
                     # py-evm runs on the loop's thread and mines each transaction as it
                     # is sent: settlements side by side would only take the loop from the
                     # exchange and the FIX sessions.
                     settle=SettleSettings(confirmations=0, in_flight=1))


async def deposit(link: ChainLink, account: str, amount: Decimal) -> Any:
    """``account``'s wallet mints ``amount`` of the mock collateral and deposits it into the
    vault; the deposit's receipt."""
    usdc = contract(link.w3, "MockUSDC", link.deployment.collateral)
    vault = contract(link.w3, "CollateralVault", link.deployment.vault)
    units, wallet = to_units(amount, link.collateral_decimals), link.wallets[account]
    await usdc.functions.mint(wallet, units).transact({"from": wallet})
    await usdc.functions.approve(link.deployment.vault, units).transact({"from": wallet})
    return await link.w3.eth.wait_for_transaction_receipt(
        await vault.functions.deposit(units, 0).transact({"from": wallet}))


@dataclass(frozen=True)
class OnChain:
    tokens: dict[str, Decimal]
    """account -> index tokens held, all indexes"""
    vault: dict[str, Decimal]
    """account -> collateral the vault holds for it"""


async def _read_back(chain: ChainLink) -> OnChain:
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


def _accounts(scenario: Scenario) -> list[str]:
    return sorted({account for account, _, _ in scenario.deposits}
                  | {spec.account for spec in scenario.orders})


def _fix_settings(store: Path, passwords: dict[str, str], chain: ChainLink,
                  setup: EngineSetup) -> FixSettings:
    """The gateway, every order signed by its account's wallet."""
    accounts = tuple(Account(a, a, hash_password(p)) for a, p in passwords.items())
    return FixSettings(port=free_port(), comp_id="SOLVER", store=store, accounts=accounts,
                       chain_id=chain.deployment.chain_id,
                       signing=order_signing(chain.deployment, setup, chain.wallets.items()))


def signing_wallets(chain: ChainLink) -> dict[str, Wallet]:
    """Each account's wallet with its key (the embedded chain's accounts' keys are known)."""
    keys = {k.public_key.to_checksum_address(): k.to_hex()
            for k in chain.w3.provider.ethereum_tester.backend.account_keys}
    vault = Vault(chain.deployment.chain_id, chain.deployment.vault,
                  dict(chain.deployment.index_tokens), chain.collateral_decimals)
    return {account: Wallet(keys[wallet], vault) for account, wallet in chain.wallets.items()}


def _signed_order(scenario: Scenario, spec: OrderSpec, wallet: Wallet,
                  deadline: datetime) -> simplefix.FixMessage:
    """The order signed by its user's wallet; one for an index the vault has no token for
    cannot be signed and goes without (the gateway refuses it: an unknown index)."""
    if spec.index not in wallet.vault.tokens:
        return fix_messages.new_order(spec.id, spec.index, spec.collateral)
    signed = wallet.sign(spec.id, spec.index, spec.collateral, signed_limit(scenario, spec),
                         deadline, FEE_BOUND_BPS)
    return fix_messages.new_order(spec.id, spec.index, spec.collateral, signed=signed)


def signed_limit(scenario: Scenario, spec: OrderSpec) -> Decimal:
    """The limit a user signs, fees included: its scenario's maximum price with the fee bound
    on top, or the index's price at the scenario's best asks with ``SLIPPAGE`` more (the
    mock's books move)."""
    fees = 1 + Decimal(FEE_BOUND_BPS) / 10_000
    if spec.max_price is not None:
        return spec.max_price * fees
    index = next(i for i in scenario.indexes if i.symbol == spec.index)
    price = sum((c.quantity * (scenario.markets[c.asset].book.best_ask or Decimal(0))
                 for c in index.constituents), Decimal(0))
    return (price * fees * (1 + SLIPPAGE)).quantize(Decimal("0.000001"), ROUND_DOWN)


async def _log_on(settings: FixSettings, passwords: dict[str, str]) -> dict[str, FixClient]:
    clients = {}
    for account, password in passwords.items():
        client = FixClient(SessionConfig("127.0.0.1", settings.port, account, settings.comp_id,
                                         account, password))
        await client.connect()
        clients[account] = client
    return clients


async def _print_reports(account: str, client: FixClient, console: Console) -> None:
    """What a user would look at: quotes, fills and the ends of orders, collateral reports."""
    while True:
        try:
            message = await client.next_message(3600)
        except TimeoutError:
            continue
        if message.get(35) in (b"S", b"AG", b"BA", b"9") or message.get(150) in _SHOWN:
            console.print(f"[dim]{account:>6}[/dim] {fix_messages.describe(message)}",
                          highlight=False, soft_wrap=True)


_SHOWN = (b"F", b"4", b"8", b"C", b"B")


async def _until_quiet(operations: OperationsStore, watch: Watch,
                       shown: Callable[[], None]) -> None:
    """Until no batch is in flight and none was planned for ``QUIET_MS``."""
    batches, quiet = -1, 0
    while quiet < QUIET_MS:
        await asyncio.sleep(0.1)
        shown()
        if operations.view().batches_in_flight or watch.batches != batches or not batches:
            batches, quiet = watch.batches, 0
        else:
            quiet += 100


def _report(engine: Engine, watch: Watch, server: MockBinance, clients: dict[str, FixClient],
            on_chain: OnChain, withdrawal: Withdrawal, console: Console) -> int:
    trades = server.exchange.trades
    same = sorted(lot.lot_id for lot in watch.lots) == sorted(lot_id(t.symbol, str(t.id))
                                                               for t in trades)
    assets = len({t.symbol for t in trades})
    console.print(f"{watch.batches} batches, {len(engine.asset_orders)} asset orders, "
                  f"{len(trades)} exchange trades in {assets} assets, {len(watch.lots)} lots")
    console.print("every trade recorded once" if same
                  else "MISMATCH: the lots are not the exchange's trades")
    console.print(_orders(clients))
    unreported = _mints_unreported(engine, clients)
    console.print(f"FIX reports received: {sum(len(c.received) for c in clients.values())}")
    console.print(f"MISSING mint reports for {unreported}" if unreported
                  else "every mint reported to its client")
    problems = violations(engine) + ([] if same else ["lots differ from the exchange's trades"])
    problems += [f"no mint report for {o}" for o in unreported]
    problems += _users(engine, on_chain, _fix_minted(clients), console)
    if withdrawal.paid != withdrawal.asked:
        problems.append(f"{withdrawal.account} asked for {withdrawal.asked} and "
                        f"{withdrawal.paid} reached the wallet")
    console.print("invariants: ok" if not problems else f"invariants: {problems}")
    return 0 if not problems else 1


def _orders(clients: dict[str, FixClient]) -> Table:
    """Each order as its client's last reports tell it: how it ended, units, average price,
    collateral spent, and the reason the gateway gave."""
    shown = table("Orders: what each user's FIX reports said (units, USDC)", "user", "order",
                  "ended", "units", "avg price", "spent", "why",
                  left={"user", "order", "ended", "why"})
    for account, client in sorted(clients.items()):
        last: dict[str, simplefix.FixMessage] = {}
        for m in client.received:
            if m.get(35) == b"8" and m.get(150) != b"B":
                last[(m.get(41) or m.get(11) or b"").decode()] = m
        for order, m in last.items():
            status = fix_messages.TERMINAL_STATUSES.get((m.get(39) or b"").decode(), "open")
            shown.add_row(account, order, status, readable(_text(m, 14)),
                          readable(_text(m, 6), 2), readable(_text(m, CUM_CASH_QTY)),
                          _text(m, 58, ""))
    return shown


def _text(message: simplefix.FixMessage, tag: int, default: str = "0") -> str:
    value = message.get(tag)
    return default if value is None else value.decode()


def _fix_minted(clients: dict[str, FixClient]) -> dict[str, Decimal]:
    """Per account: the units its mint reports (ExecType B, MintQty) said were minted."""
    return {account: sum((Decimal((m.get(MINT_QTY) or b"0").decode())
                          for m in client.received if m.get(150) == b"B"), ZERO)
            for account, client in clients.items()}


def _users(engine: Engine, on_chain: OnChain, fix_minted: dict[str, Decimal],
           console: Console) -> list[str]:
    """Per user: what the solver recorded and FIX reported beside what the chain holds; the
    differences."""
    record = table("Users: what the solver recorded (USDC, units)", "user", "deposited",
                   "spent", "released", "withdrawn", "units filled")
    chain = table("Users: FIX and the chain", "user", "minted (FIX)", "tokens (chain)",
                  "vault (chain)", "agree")
    problems = []  # compared exactly; shown to 6 decimals
    for account in sorted(on_chain.tokens):
        b = engine.ledger.balance(account, "USDC")
        mine = [o for o in engine.orders.values() if o.account == account]
        released = sum((o.released for o in mine), ZERO)
        filled = sum((o.filled_units for o in mine), ZERO)
        minted = sum((o.minted_units for o in mine), ZERO)
        reported, tokens, vault = (fix_minted.get(account, ZERO), on_chain.tokens[account],
                                   on_chain.vault[account])
        wrong = []
        if not tokens == minted == reported == filled:
            wrong.append(f"{account}: {tokens} tokens on-chain, {minted} minted, {filled} "
                         f"filled, {reported} reported over FIX")
        if vault != b.deposited - b.spent - b.withdrawn:
            wrong.append(f"{account}: the vault holds {vault}, the ledger says "
                         f"{b.deposited - b.spent - b.withdrawn}")
        record.add_row(account, *map(readable, (b.deposited, b.spent, released, b.withdrawn,
                                                filled)))
        chain.add_row(account, *map(readable, (reported, tokens, vault)),
                      "yes" if not wrong else "[red]NO[/]")
        problems += wrong
    console.print(record)
    console.print(chain)
    console.print("(amounts to 6 decimals at most; compared exactly)")
    return problems


def _mints_unreported(engine: Engine, clients: dict[str, FixClient]) -> list[str]:
    reported = {(account, (m.get(MINT_TX_HASH) or b"").decode())
                for account, client in clients.items() for m in client.received
                if m.get(150) == b"B"}
    return [o.client_order_id for o in engine.orders.values()
            if o.mint_tx is not None and (o.account, o.mint_tx) not in reported]
