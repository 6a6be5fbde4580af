"""Settled orders per second, sustained: the settler's jobs of signed orders on anvil mining a
block every ``--block-s`` seconds (`--gas-limit 30000000`), each settlement reported once it
has ``--confirmations`` blocks on top, as on a real chain.

Mints are asked for at ``--rate`` a second for ``--seconds`` (the orders of ``--users``
wallets, each holding the index token already: a desk's next order; all signed before the
clock starts); the figures are the settlements reported confirmed per second over the window
(from the first report to the end of the asking, and over the whole run until the last is
reported), the orders per block, and the block's gas bound for comparison: 30M gas divided by
the gas one order used, per block time.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import structlog
from eth_account.signers.local import LocalAccount
from rich.console import Console
from web3 import AsyncWeb3

from benchmarks.signed_mints import deposited_wallets, signed_orders
from chain.deploy import contract, deploy_local
from chain.deployment import ChainDeployment
from chain.local_node import anvil
from chain.mints import Mint, MintsWaiting
from chain.provider import node_provider
from chain.settler import Settler, SettleSettings
from solver.core.bus import EventBus
from solver.core.commands import Input, MintConfirmed
from solver.core.market import MarketRules
from solver.core.model import Constituent, Index
from solver.core.setup import EngineSetup
from solver.journal.store import Journal

BLOCK_GAS = 30_000_000
VERBOSE = "--verbose" in sys.argv


async def prepare(w3: AsyncWeb3[Any], users: int) -> tuple[ChainDeployment, LocalAccount,
                                                           list[LocalAccount]]:
    owner, treasury = (await w3.eth.accounts)[:2]
    deployment, operator = await deploy_local(w3, owner, treasury, 3600, {"IX": "Index"})
    wallets = await deposited_wallets(w3, deployment, users, 10**9,
                                      describe="funding the users")
    return deployment, operator, wallets


async def run(w3: AsyncWeb3[Any], directory: Path, deployment: ChainDeployment,
              operator: LocalAccount, mints: MintsWaiting, asked: list[Mint], rate: float,
              confirmations: int) -> tuple[list[float], float, float]:
    """Ask for the mints at ``rate`` a second; the times settlements were reported, when
    asking began and when it ended."""
    setup = EngineSetup((Index("IX", "USDC", (Constituent("A", "AUSDC", Decimal(1)),)),),
                        (MarketRules("AUSDC", "A", "USDC"),), client_order_prefix="bench")
    journal = Journal.create(directory / "journal.db", setup)
    reported: list[float] = []

    def report(outcome: Input) -> None:
        assert isinstance(outcome, MintConfirmed), outcome
        reported.append(time.perf_counter())

    settler = Settler(w3, contract(w3, "CollateralVault", deployment.vault), deployment,
                      operator, journal, report, lambda: 0, "bench", 6, mints,
                      SettleSettings(confirmations=confirmations, poll_s=0.05, in_flight=8))
    settler.attach(EventBus())
    working = asyncio.create_task(settler.run())
    began = time.perf_counter()
    for n, mint in enumerate(asked):
        await asyncio.sleep(max(0.0, began + n / rate - time.perf_counter()))
        settler._asked.put_nowait(mint)  # what MintRequested does
    ended = time.perf_counter()
    while len(reported) < len(asked):
        await asyncio.sleep(0.05)
    working.cancel()
    journal.close()
    return reported, began, ended


async def per_block(w3: AsyncWeb3[Any], vault_address: str, since: int) -> list[tuple[int, int]]:
    """(orders settled, gas used) of each block since ``since`` with settlements."""
    vault = contract(w3, "CollateralVault", vault_address)  # type: ignore[arg-type]
    head = await w3.eth.block_number
    blocks = []
    for number in range(since + 1, head + 1):
        block = await w3.eth.get_block(number)
        settled = await vault.events.OrderSettled().get_logs(from_block=number, to_block=number)
        if settled:
            blocks.append((len(settled), int(block["gasUsed"])))
        if VERBOSE:
            print(number, block["timestamp"], len(settled), len(block["transactions"]))
    return blocks


async def main(args: argparse.Namespace) -> None:
    console = Console(width=110)
    async with anvil("--gas-limit", str(BLOCK_GAS)) as url:
        w3: AsyncWeb3[Any] = AsyncWeb3(node_provider(url))
        try:
            deployment, operator, wallets = await prepare(w3, args.users)
            now = int((await w3.eth.get_block("latest"))["timestamp"])
            count = int(args.rate * args.seconds)
            # the users hold the token already (a desk's next order): one first order each
            warm_mints, warm = signed_orders(deployment, wallets,
                                             range(10**6, 10**6 + len(wallets)), now + 86400)
            await run(w3, Path(args.dir), deployment, operator, warm_mints, warm, 10**6, 0)
            mints, asked = signed_orders(deployment, wallets, range(1, count + 1),
                                         now + 86400)
            await w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
            await w3.provider.make_request(  # type: ignore[arg-type]
                "evm_setIntervalMining", [args.block_s])
            start_block = await w3.eth.block_number
            reported, began, ended = await run(w3, Path(args.dir) / "run", deployment,
                                               operator, mints, asked, args.rate,
                                               args.confirmations)
            blocks = await per_block(w3, deployment.vault, start_block)
        finally:
            await w3.provider.disconnect()
    first = reported[0]
    in_window = [t for t in reported if t <= ended]
    gas_per_order = sum(g for _, g in blocks) / sum(n for n, _ in blocks)
    bound = BLOCK_GAS / gas_per_order / args.block_s
    sustained = (len(in_window) - 1) / (ended - first) if len(in_window) > 1 else 0.0
    overall = len(reported) / (reported[-1] - began)
    console.print(
        f"a block every {args.block_s} s, confirmations {args.confirmations}, asked "
        f"{args.rate:g}/s for {args.seconds:g} s ({count} signed orders of {args.users} "
        f"wallets)")
    console.print(f"  settled and confirmed, sustained (first report to the end of asking): "
                  f"{sustained:,.1f} orders/s")
    console.print(f"  overall (first ask to last report): {overall:,.1f} orders/s")
    counts = sorted(n for n, _ in blocks)
    console.print(f"  orders per block: median {statistics.median(counts):g}, most "
                  f"{counts[-1]}, {len(counts)} blocks; "
                  f"gas per order {gas_per_order:,.0f}; block gas used "
                  f"{max(g for _, g in blocks) / BLOCK_GAS:.0%} at most")
    console.print(f"  the blocks' gas bound: {bound:,.1f} orders/s; sustained is "
                  f"{sustained / bound:.0%} of it")


if __name__ == "__main__":
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--block-s", type=int, default=1)
    parser.add_argument("--confirmations", type=int, default=2)
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--verbose", action="store_true", help="every block: settled, txs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        args.dir = name
        (Path(name) / "run").mkdir()
        asyncio.run(main(args))
