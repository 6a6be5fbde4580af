"""Sustained orders per second end to end on the demo stack: FIX orders acked, filled on the
mock Binance and settled on-chain per second, over a minute, with the settler sending one
order per transaction (as before batching: today's figure) and batching, side by side.

The stack is the demo's: the QuickFIX gateway with ``--users`` FIX sessions, the mock Binance
(its books refilling every 100 ms, Binance's order limit of 100 orders per 10 s kept), and the
vault on anvil mining a block every ``--block-s`` seconds (``--gas-limit 30000000``), each
deposit and settlement taken once it has 2 confirmations, as on a real chain
(``--chain embedded``: py-evm in process, as ``make demo`` runs, confirmations 0). Each user is
a fresh wallet whose key the benchmark holds, funded by the node's first account, its
collateral deposited in the vault; every order is signed by its user's wallet as the demo signs
them (a limit at the index's price with slippage and the fee bound on top, MaxFeeBps 50, a
deadline a day ahead), all before the clock starts.

The users send 40 USDC orders of SY2 at ``--rate`` a second between them (round-robin over the
sessions) for ``--seconds``; then the run waits, at most ``--drain-s``, for every order to end
and every filled one to be settled. Per second over the steady window (the sending, less the
first ``--warm-up`` seconds, at most a quarter of it): ExecutionReports New (150=0, acked),
orders fully traded (OrdStatus 2) and mint reports (150=B, settled on-chain); and each one's
latency from the NewOrderSingle, over the orders sent in that window (those that had not got
there by the end are counted, not timed). Run twice, each on a fresh chain, exchange and
service: the settler with ``batch_size=1`` and with its default batching.

The exchange's order limit bounds batches, not orders (a batch of any number of orders sends
one asset order per asset: 5 batches a second for a two-asset index); an order closes once
less than 2 USDC of it is left, and one too small to be bought alone waits 5 s at most for
company (``completion_wait_ms``; 60 s by default), so that the last orders end the run soon.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import faulthandler
import logging
import multiprocessing
import os
import secrets
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import simplefix
import structlog
from rich.console import Console
from rich.table import Table
from web3 import AsyncWeb3

from benchmarks.figures import percentiles
from benchmarks.signed_mints import deposited_wallets
from chain.deploy import deploy_local
from chain.local_node import anvil
from chain.provider import node_provider
from chain.settler import SettleSettings
from chain.watcher import WatchSettings
from fix_gateway.config import Account, FixSettings
from fix_gateway.passwords import hash_password
from mocks.binance.exchange import MockExchange
from mocks.binance.server import Credentials, MockBinance
from mocks.fix_client import FixClient, SessionConfig, messages
from mocks.fix_client.wallet import Vault, Wallet
from mocks.ports import free_port
from solver.core.setup import EngineSetup
from solver.demo import FEE_BOUND_BPS, deployed_chain, signed_limit
from solver.exchange.endpoints import ApiKey, local
from solver.service.chain_link import ChainLink
from solver.service.order_signing import order_signing
from solver.service.service import running_service
from solver.simulation.run import setup_of
from solver.simulation.scenario import OrderSpec, Scenario, load_scenario

ROOT = Path(__file__).resolve().parent.parent
INDEX, ORDER = "SY2", Decimal("40")
BLOCK_GAS = 30_000_000
CONFIRMATIONS = 2
SIGNED_FOR = timedelta(days=1)
DEPOSIT_USDC = 10**7
SET_UP_S = 300
"""A run's set-up and wind-down take less than this."""
SETTLERS = {"one order a transaction (batch_size=1)": 1,
            f"batched (batch_size={SettleSettings().batch_size})": SettleSettings().batch_size}


@dataclass
class Order:
    """One order's moments (``time.perf_counter``): sent, acked (150=0), fully traded
    (OrdStatus 2), settled (150=B); and how it ended."""

    sent: float
    acked: float | None = None
    traded: float | None = None
    minted: float | None = None
    status: bytes = b""
    text: str = ""


@dataclass
class Run:
    orders: dict[str, Order] = field(default_factory=dict)
    began: float = 0.0
    ended: float = 0.0
    drained: float = 0.0
    """When every order had ended and every filled one was settled, or the drain gave up."""
    blocks: int = 0

    def ended_and_settled(self) -> bool:
        return all(o.status in (b"2", b"4", b"C", b"8") and (o.status != b"2" or o.minted)
                   for o in self.orders.values())


async def measure(args: argparse.Namespace, batch_size: int) -> Run:
    scenario = load_scenario(ROOT / "examples" / "scenarios" / "basic.toml")
    setup = setup_of(scenario)
    setup = replace(setup, params=replace(setup.params, dust_threshold=Decimal(2),
                                          completion_wait_ms=5_000))
    names = [f"user{n}" for n in range(args.users)]
    async with _chain(args, names, batch_size) as (chain, wallets):
        key = ApiKey(secrets.token_hex(8), secrets.token_hex(16))
        exchange = MockExchange(dict(scenario.markets), {"USDC": Decimal(10) ** 9})
        server = MockBinance(exchange, Credentials(key.key, key.secret), step_ms=100)
        count = int(args.rate * args.seconds)
        signed = _signed_orders(scenario, names, wallets, count)
        passwords = {n: secrets.token_urlsafe(12) for n in names}
        run = Run()
        await server.start()
        try:
            with tempfile.TemporaryDirectory() as store:
                fix = _fix_settings(Path(store), passwords, chain, setup)
                async with running_service(setup, fix, local(server.port), key, chain=chain):
                    clients = [FixClient(SessionConfig("127.0.0.1", fix.port, n, "SOLVER", n,
                                                       p)) for n, p in passwords.items()]
                    for client in clients:
                        await client.connect()
                    # every deposit credited (a collateral report, 35=BA) before the clock
                    await _until(lambda: all(any(m.get(35) == b"BA" for m in c.received)
                                             for c in clients), 120)
                    readers = [asyncio.create_task(_read(c, run)) for c in clients]
                    first_block = await chain.w3.eth.block_number
                    run.began = time.perf_counter()
                    for n, (user, message) in enumerate(signed):
                        await asyncio.sleep(max(0.0, run.began + n / args.rate
                                                - time.perf_counter()))
                        run.orders[f"o{n}"] = Order(time.perf_counter())
                        await clients[user].send(message)
                    await asyncio.sleep(max(0.0, run.began + args.seconds
                                            - time.perf_counter()))
                    run.ended = time.perf_counter()
                    with contextlib.suppress(TimeoutError):
                        await _until(run.ended_and_settled, args.drain_s)
                    run.drained = time.perf_counter()
                    run.blocks = await chain.w3.eth.block_number - first_block
                    for task in readers:
                        task.cancel()
                    for client in clients:
                        with contextlib.suppress(ConnectionError, TimeoutError):
                            await client.logout(timeout=2)
        finally:
            await server.stop()
    return run


@contextlib.asynccontextmanager
async def _chain(args: argparse.Namespace, names: list[str], batch_size: int,
                 ) -> AsyncIterator[tuple[ChainLink, dict[str, Wallet]]]:
    """The vault deployed on a fresh chain; each user's wallet (a new key) funded with gas and
    its collateral deposited; the settler sending at most ``batch_size`` orders a
    transaction."""
    if args.chain == "embedded":
        link = await deployed_chain(setup_of(load_scenario(
            ROOT / "examples" / "scenarios" / "basic.toml")).indexes, [])
        link = replace(link, settle=replace(link.settle, batch_size=batch_size))
        yield await _users(link, names)
        return
    async with anvil("--block-time", str(args.block_s), "--gas-limit", str(BLOCK_GAS)) as url:
        w3: AsyncWeb3[Any] = AsyncWeb3(node_provider(url))
        try:
            await _rpc(w3, "evm_setAutomine", True)  # set up at once: a block per transaction
            owner, treasury = list(await w3.eth.accounts)[:2]
            deployment, operator = await deploy_local(w3, owner, treasury, 3600,
                                                      {INDEX: f"{INDEX} index"})
            link = ChainLink(w3, deployment, operator, {}, collateral_decimals=6,
                             watch=WatchSettings(confirmations=CONFIRMATIONS, poll_s=0.1),
                             settle=SettleSettings(confirmations=CONFIRMATIONS,
                                                   batch_size=batch_size))
            users = await _users(link, names)
            await _rpc(w3, "evm_setAutomine", False)  # a block every --block-s from now on
            await _rpc(w3, "evm_setIntervalMining", args.block_s)
            yield users
        finally:
            await w3.provider.disconnect()


async def _rpc(w3: AsyncWeb3[Any], method: str, *params: Any) -> None:
    response = await w3.provider.make_request(method, list(params))
    if "error" in response:
        raise RuntimeError(f"{method}: {response['error']}")


async def _users(link: ChainLink, names: list[str]) -> tuple[ChainLink, dict[str, Wallet]]:
    accounts = await deposited_wallets(link.w3, link.deployment, len(names), DEPOSIT_USDC,
                                       describe="funding the users")
    vault = Vault(link.deployment.chain_id, link.deployment.vault,
                  dict(link.deployment.index_tokens), link.collateral_decimals)
    wallets = {n: Wallet("0x" + bytes(a.key).hex(), vault) for n, a in zip(names, accounts,
                                                                             strict=True)}
    return replace(link, wallets={n: w.address for n, w in wallets.items()}), wallets


def _signed_orders(scenario: Scenario, names: list[str], wallets: dict[str, Wallet],
                   count: int) -> list[tuple[int, simplefix.FixMessage]]:
    """``count`` orders, round-robin over the users (their index), each signed by its user's
    wallet as the demo signs them."""
    deadline = datetime.now(UTC) + SIGNED_FOR
    limit = signed_limit(scenario, OrderSpec(names[0], "o0", INDEX, ORDER, None))
    orders = []
    for n in range(count):
        user = n % len(names)
        signed = wallets[names[user]].sign(f"o{n}", INDEX, ORDER, limit, deadline,
                                           FEE_BOUND_BPS)
        orders.append((user, messages.new_order(f"o{n}", INDEX, ORDER, signed=signed)))
    return orders


def _fix_settings(store: Path, passwords: dict[str, str], chain: ChainLink,
                  setup: EngineSetup) -> FixSettings:
    """The gateway, every order signed by its account's wallet (as the demo's)."""
    return FixSettings(port=free_port(), comp_id="SOLVER", store=store,
                       accounts=tuple(Account(a, a, hash_password(p))
                                      for a, p in passwords.items()),
                       chain_id=chain.deployment.chain_id,
                       signing=order_signing(chain.deployment, setup, chain.wallets.items()))


async def _read(client: FixClient, run: Run) -> None:
    """Each ExecutionReport's moment as it arrives."""
    while True:
        try:
            message = await client.next_message(3600)
        except TimeoutError:
            continue
        now = time.perf_counter()
        order = run.orders.get((message.get(11) or b"").decode())
        if message.get(35) != b"8" or order is None:
            continue
        kind, status = message.get(150), message.get(39) or b""
        if kind == b"0" and order.acked is None:
            order.acked = now
        if kind == b"B":
            order.minted = order.minted or now
            continue
        if status == b"2" and order.traded is None:
            order.traded = now
        order.status = status
        if kind in (b"8", b"4", b"C"):
            order.text = (message.get(58) or b"").decode()


async def _until(condition: Callable[[], bool], timeout_s: float) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.02)


STAGES = (("acked (150=0)", "acked"), ("fully traded (39=2)", "traded"),
          ("settled on-chain (150=B)", "minted"))


def figures(run: Run, warm_up_s: float) -> dict[str, tuple[float, str, str, int]]:
    """Per stage: events per second over the steady window, p50 and p99 latency of the
    orders sent in it, and how many of those had not got there by the end of the run."""
    start = run.began + warm_up_s
    window = run.ended - start
    sent = [o for o in run.orders.values() if o.sent >= start]
    out = {}
    for name, attribute in STAGES:
        moments = [getattr(o, attribute) for o in run.orders.values()]
        rate = sum(1 for t in moments if t is not None and start <= t <= run.ended) / window
        latencies = [getattr(o, attribute) - o.sent for o in sent
                     if getattr(o, attribute) is not None]
        missing = len(sent) - len(latencies)
        if latencies:  # "p50 1.23 ms, p90 ..., n=7": the same figures as every benchmark's
            shown = dict(part.split(" ", 1) for part in percentiles(latencies).split(", ")
                         if " " in part)
            p50, p99 = shown["p50"], shown["p99"]
        else:
            p50 = p99 = "-"
        out[name] = (rate, p50, p99, missing)
    return out


def report(args: argparse.Namespace, runs: dict[str, Run], console: Console) -> None:
    warm_up = min(args.warm_up, args.seconds / 4)
    chain = (f"anvil, a block every {args.block_s} s, {CONFIRMATIONS} confirmations"
             if args.chain == "anvil" else "the embedded chain (py-evm), 0 confirmations")
    console.print(f"{args.rate:g} signed orders/s of {ORDER} USDC asked from {args.users} FIX "
                  f"sessions for {args.seconds:g} s on {chain}; per second over the steady "
                  f"window ({warm_up:g} s to {args.seconds:g} s), latency from the "
                  f"NewOrderSingle of the orders sent in it")
    shown = Table()
    shown.add_column("")
    for name in runs:
        shown.add_column(name, justify="right")
    all_figures = {name: figures(run, warm_up) for name, run in runs.items()}
    for stage, _ in STAGES:
        cells = []
        for name in runs:
            rate, p50, p99, missing = all_figures[name][stage]
            cells.append(f"{rate:,.1f}/s  p50 {p50}  p99 {p99}"
                         + (f"  ({missing} not by the end)" if missing else ""))
        shown.add_row(stage, *cells)
    rows: list[tuple[str, Callable[[Run], str]]] = [
        ("orders sent", lambda r: f"{len(r.orders)} in {r.ended - r.began:.1f} s "
                                  f"({len(r.orders) / (r.ended - r.began):,.1f}/s)"),
        ("filled, settled", lambda r: f"{_count(r, 'traded')}, {_count(r, 'minted')}"),
        ("ended otherwise", lambda r: _otherwise(r)),
        ("all settled", lambda r: (f"{r.drained - r.ended:.1f} s after the sending"
                                   if r.ended_and_settled() else
                                   f"not {args.drain_s:g} s after the sending")),
        ("blocks", lambda r: f"{r.blocks}"),
    ]
    for label, cell in rows:
        shown.add_row(label, *(cell(run) for run in runs.values()))
    console.print(shown)


def _count(run: Run, attribute: str) -> int:
    return sum(1 for o in run.orders.values() if getattr(o, attribute) is not None)


def _otherwise(run: Run) -> str:
    ended: dict[str, int] = {}
    for o in run.orders.values():
        if o.status not in (b"2",):
            why = {b"4": "canceled", b"C": "expired", b"8": "rejected"}.get(
                o.status, "open")
            key = f"{why}: {o.text}" if o.text else why
            ended[key] = ended.get(key, 0) + 1
    return "; ".join(f"{n} {why}" for why, n in sorted(ended.items())) or "none"


def measured(sending: Connection, args: argparse.Namespace, batch_size: int) -> None:
    """One run, in a process of its own (nothing one side leaves behind, a thread, a session,
    a node's connection, touches the other), its figures sent back. Should a run hang, its
    threads' stacks are printed and it ends."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    faulthandler.dump_traceback_later(args.seconds + args.drain_s + SET_UP_S, exit=True)
    sending.send(asyncio.run(measure(args, batch_size)))
    sending.close()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def main(args: argparse.Namespace) -> None:
    console = Console(width=140)
    runs = {}
    spawn = multiprocessing.get_context("spawn")
    for name, batch_size in SETTLERS.items():
        console.print(f"[dim]{name}: {args.seconds:g} s at {args.rate:g} orders/s ...[/dim]")
        receiving, sending = spawn.Pipe(duplex=False)
        process = spawn.Process(target=measured, args=(sending, args, batch_size))
        process.start()
        sending.close()
        try:
            runs[name] = receiving.recv()
        except EOFError:
            raise SystemExit(f"the run with batch_size={batch_size} failed: its error is "
                             "above") from None
        process.join()
    report(args, runs, console)


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chain", choices=("embedded", "anvil"), default="anvil")
    parser.add_argument("--block-s", type=int, default=1, help="anvil's block time")
    parser.add_argument("--rate", type=float, default=50, help="orders a second, all users")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--users", type=int, default=10, help="FIX sessions, one wallet each")
    parser.add_argument("--warm-up", type=float, default=10,
                        help="seconds left out of the figures (at most a quarter of the run)")
    parser.add_argument("--drain-s", type=float, default=60,
                        help="the longest wait for the last orders after the sending")
    return parser.parse_args()


if __name__ == "__main__":
    main(arguments())
