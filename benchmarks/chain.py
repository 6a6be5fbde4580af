"""The chain adapter on the embedded chain (py-evm through eth-tester, in process) or on
anvil (``--backend anvil``, started on a free loopback port).

- deposit -> credit: a user's ``deposit`` mined, then the watcher's poll until the engine has
  journaled the credit (confirmations 0; a real chain adds its block time per confirmation);
- settlement: the settler's whole job for one order (vault check, a predicting call, nonce,
  job written to the journal, sign, send, receipt), one after another, and settlements/s.
  Each order is signed (EIP-712) by its wallet, a key the benchmark holds with its collateral
  deposited in the vault, and settles alone: the vault's ``settle_batch`` of one order (the
  vault settles nothing else);

- on anvil, then mining a block every ``--block-s`` seconds as a real chain does, with
  ``--confirmations`` (2): the settler's workers with one settlement in flight, then eight
  (each with its own nonce), one signed order a job (``batch_size`` 1; jobs of many orders
  are ``settle_rate.py``'s); the rate overall, and steady (from the first confirmation
  reported to the last).

``--n`` sets how many of each (default 200).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eth_account.signers.local import LocalAccount
from web3 import AsyncWeb3
from web3.providers.eth_tester import AsyncEthereumTesterProvider

from benchmarks.figures import percentiles
from benchmarks.signed_mints import SPENT, deposited_wallets, sign_mint
from chain.deploy import contract, deploy_local
from chain.deployment import ChainDeployment
from chain.local_node import anvil
from chain.mints import MintsWaiting
from chain.provider import node_provider
from chain.settler import Settler, SettleSettings
from chain.watcher import VaultWatcher, WatchSettings
from solver.core.bus import EventBus
from solver.core.commands import BindWallet, Input, MintConfirmed
from solver.core.engine import Engine
from solver.core.market import MarketRules
from solver.core.model import Constituent, Index
from solver.core.setup import EngineSetup
from solver.journal.store import Journal
from solver.service.sequencer import Sequencer

USDC = 10**6


async def bench(n: int, directory: Path, backend: str, blocks_s: int,
                confirmations: int) -> None:
    if backend == "anvil":
        async with anvil() as url:
            w3: AsyncWeb3[Any] = AsyncWeb3(node_provider(url))
            try:
                await measure(w3, n, directory, blocks_s, confirmations)
            finally:
                await w3.provider.disconnect()
    else:
        await measure(AsyncWeb3(AsyncEthereumTesterProvider()), n, directory)


async def measure(w3: AsyncWeb3[Any], n: int, directory: Path, blocks_s: int = 0,
                  confirmations: int = 2) -> None:
    owner, treasury, user = (await w3.eth.accounts)[:3]
    deployment, operator = await deploy_local(
        w3, owner, treasury, 3600, {"IX": "Index"})
    vault = contract(w3, "CollateralVault", deployment.vault)
    usdc = contract(w3, "MockUSDC", deployment.collateral)
    await usdc.functions.mint(user, 10**12 * USDC).transact({"from": user})
    await usdc.functions.approve(vault.address, 2**256 - 1).transact({"from": user})

    setup = EngineSetup((Index("IX", "USDC", (Constituent("A", "AUSDC", Decimal(1)),)),),
                        (MarketRules("AUSDC", "A", "USDC"),), client_order_prefix="bench")
    engine: Engine = setup.build()
    journal = Journal.create(directory / "journal.db", setup)
    bus = EventBus()
    sequencer = Sequencer(engine, bus, journal)
    now = iter(range(1, 10**9))

    def submit(command: Input) -> None:
        sequencer.apply(command)
        sequencer.flush()

    submit(BindWallet(next(now), user, "user"))
    # the wallet that signs every order settled, with enough for them all
    [wallet] = await deposited_wallets(w3, deployment, 1, int(SPENT) * (n + 200))
    deadline_s = int((await w3.eth.get_block("latest"))["timestamp"]) + 86400
    watcher = VaultWatcher(w3, vault, "USDC", 6, journal, submit, lambda: next(now),
                           deployment.start_block, WatchSettings(confirmations=0))
    bus.observe(watcher)
    await watcher.poll()

    credit: list[float] = []
    for _ in range(n):
        start = time.perf_counter()
        await w3.eth.wait_for_transaction_receipt(
            await vault.functions.deposit(10 * USDC, 0).transact({"from": user}))
        await watcher.poll()
        credit.append(time.perf_counter() - start)
    print(f"deposit -> credited (journaled): {percentiles(credit)}")

    mints = MintsWaiting()
    settler = Settler(w3, vault, deployment, operator, journal, submit, lambda: next(now),
                      "bench", 6, mints, SettleSettings(confirmations=0, poll_s=0.005))
    settle: list[float] = []
    began = time.perf_counter()
    for order_id in range(1, n + 1):
        mint = sign_mint(mints, deployment, wallet, order_id, deadline_s, "user")
        start = time.perf_counter()
        result: Any = await settler.settle(mint)
        settle.append(time.perf_counter() - start)
        assert result.tx_hash.startswith("0x"), result
    elapsed = time.perf_counter() - began
    print(f"settlement (check, predicting call, journal the job, send, receipt): "
          f"{percentiles(settle)}")
    print(f"{n} settlements one after another: {n / elapsed:,.0f} settlements/s")
    if blocks_s:
        await w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
        await w3.provider.make_request(  # type: ignore[arg-type]
            "evm_setIntervalMining", [blocks_s])
        first = n + 1
        for in_flight in (1, 8):
            settings = SettleSettings(confirmations=confirmations, poll_s=0.05,
                                      in_flight=in_flight, batch_size=1)
            count = 16 * in_flight
            seconds, steady = await worked(Settler(w3, vault, deployment, operator, journal,
                                                   submit, lambda: next(now), "bench", 6,
                                                   MintsWaiting(), settings),
                                           first, count, wallet, deployment, deadline_s)
            print(f"a block every {blocks_s} s, confirmations {confirmations}, {in_flight} in "
                  f"flight: {count} settlements in {seconds:.1f} s, {count / seconds:.1f} "
                  f"settlements/s overall, {steady:.1f}/s steady")
            first += count
    journal.close()


async def worked(settler: Settler, first: int, count: int, wallet: LocalAccount,
                 deployment: ChainDeployment, deadline_s: int) -> tuple[float, float]:
    """Seconds for the settler's workers to settle ``count`` mints asked for at once, and the
    steady rate (settlements a second from the first reported to the last)."""
    done: list[Input] = []
    reported: list[float] = []

    def report(result: Input) -> None:
        done.append(result)
        reported.append(time.perf_counter())

    settler.submit = report
    for order_id in range(first, first + count):
        settler.mints.waiting[order_id] = sign_mint(settler.mints, deployment, wallet,
                                                    order_id, deadline_s, "user")
    settler.attach(EventBus())
    start = time.perf_counter()
    working = asyncio.create_task(settler.run())
    while len(done) < count:
        await asyncio.sleep(0.01)
    seconds = time.perf_counter() - start
    working.cancel()
    assert all(isinstance(result, MintConfirmed) for result in done), done
    return seconds, (count - 1) / (reported[-1] - reported[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--backend", choices=("embedded", "anvil"), default="embedded")
    parser.add_argument("--block-s", type=int, default=1,
                        help="anvil: then a block every this many seconds, as a real chain")
    parser.add_argument("--confirmations", type=int, default=2,
                        help="anvil, a block every --block-s: blocks on top of a settlement "
                             "before it is reported")
    args = parser.parse_args()
    print(f"backend: {args.backend}")
    with tempfile.TemporaryDirectory() as name:
        asyncio.run(bench(args.n, Path(name), args.backend, args.block_s,
                          args.confirmations))


if __name__ == "__main__":
    main()
