"""A settler killed with SIGKILL after it sent its job's transaction, before it was mined, and
started again: each order is charged and minted exactly once, with one transaction: one
wallet's signed order alone, and three wallets' settled as one batch."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from dataclasses import asdict
from decimal import Decimal as D
from pathlib import Path
from typing import Any

from eth_account import Account
from web3 import AsyncWeb3

from chain.deploy import contract, deploy_local, transact
from chain.deployment import ChainDeployment
from chain.mints import Mint
from chain.settler import Settler, SettleSettings
from solver.core.commands import MintConfirmed
from solver.core.setup import EngineSetup
from solver.core.signed_terms import SignedTerms
from solver.journal.store import Journal
from solver.signed_orders import Domain, signed_by
from tests.support.builders import index, params, rules
from tests.support.chains import Anvil, chain
from tests.support.settle_some import waiting

ROOT = Path(__file__).parent.parent.parent
USDC = 10**6
ORDER = {"index": "SY2", "collateral": "1000", "spent": "998.5", "fees": "1.5",
         "units": "0.99"}


def test_a_settler_killed_mid_job_and_restarted_settles_exactly_once(tmp_path: Path) -> None:
    asyncio.run(asyncio.wait_for(_killed_with(1, tmp_path), 120))


def test_a_settler_killed_mid_batch_and_restarted_settles_each_order_once(
        tmp_path: Path) -> None:
    asyncio.run(asyncio.wait_for(_killed_with(3, tmp_path), 120))


async def _killed_with(count: int, tmp_path: Path) -> None:
    """``count`` wallets' signed orders settled as one job by a settler killed mid-job, then
    by one restarted."""
    async with chain("anvil") as node:
        assert isinstance(node, Anvil)
        w3 = node.w3
        owner, treasury = (await w3.eth.accounts)[:2]
        deployment, operator = await deploy_local(
            w3, owner, treasury, 3600, {"SY2": "Two assets"})
        now = int((await w3.eth.get_block("latest"))["timestamp"])
        orders = []
        for n in range(1, count + 1):
            wallet = Account.create()
            await w3.eth.wait_for_transaction_receipt(await w3.eth.send_transaction(
                {"from": owner, "to": wallet.address, "value": 10**18}))
            await _deposit(w3, deployment, wallet)
            terms = signed_by(
                SignedTerms(wallet.address, f"o{n}", D(1000), D(1010), 50, now + 3600, ""),
                wallet.key.to_0x_hex(), deployment.index_tokens["SY2"], 6,
                Domain(deployment.chain_id, deployment.vault))
            orders.append(ORDER | {"id": n, "wallet": wallet.address, "name": f"o{n}",
                                   "signed": asdict(terms)})
        await _killed_then_restarted(node, tmp_path, deployment, operator, orders)


async def _deposit(w3: AsyncWeb3[Any], deployment: ChainDeployment, user: Any) -> None:
    usdc = contract(w3, "MockUSDC", deployment.collateral)
    vault = contract(w3, "CollateralVault", deployment.vault)
    await transact(w3, user, usdc.functions.mint(user.address, 1000 * USDC))
    await transact(w3, user, usdc.functions.approve(vault.address, 1000 * USDC))
    await transact(w3, user, vault.functions.deposit(1000 * USDC, 0))


async def _killed_then_restarted(node: Anvil, tmp_path: Path, deployment: ChainDeployment,
                                 operator: Any, orders: list[dict[str, Any]]) -> None:
    """The orders settled by a subprocess killed once its transaction is sent, unmined; then
    by a settler resuming from the same journal."""
    w3 = node.w3
    deployment.save(tmp_path / "chain.json")
    journal_path = tmp_path / "journal.db"
    Journal.create(journal_path, EngineSetup((index(),), (rules("A1"), rules("A2")),
                                             params())).close()
    spec = {"rpc": str(w3.provider.endpoint_uri),  # type: ignore[attr-defined]
            "deployment": str(tmp_path / "chain.json"), "journal": str(journal_path),
            "key_env": "OPERATOR_KEY", "orders": json.loads(json.dumps(orders, default=str))}
    await node.automine(False)  # the settlement waits in the pool, unmined
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.settle_some", json.dumps(spec)], cwd=ROOT,
        env={**os.environ, "OPERATOR_KEY": operator.key.hex()})
    try:
        sent = await _pending_settlement(w3, journal_path)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert await w3.eth.get_transaction_count(operator.address) == 0  # not mined
    await node.automine(True)
    await node.mine(1)  # the killed settler's transaction is mined now

    vault = contract(w3, "CollateralVault", deployment.vault)
    with Journal.open(journal_path) as journal:
        again = Settler(w3, vault, deployment, operator, journal, print, lambda: 0, "test", 6,
                        waiting(spec["orders"]), SettleSettings(confirmations=0))
        outcomes = await again.settle_all([Mint(o["id"], 1, D(o["units"])) for o in orders])
    assert all(isinstance(o, MintConfirmed) and o.tx_hash == sent for o in outcomes)
    assert len(outcomes) == len(orders)
    token = contract(w3, "IndexToken", deployment.index_tokens["SY2"])
    assert await token.functions.totalSupply().call() == len(orders) * 99 * 10**16
    assert await w3.eth.get_transaction_count(operator.address) == 1  # nothing more
    for order in orders:
        assert await vault.functions.balances(order["wallet"]).call() == int(D("1.5") * USDC)


async def _pending_settlement(w3: Any, journal_path: Path) -> str:
    """The hash of the job's transaction the subprocess recorded and sent, once the node has
    it."""
    while True:
        with Journal.open(journal_path, verify=False) as journal:
            records = list(journal.records("settlement:").values())
        if records and json.loads(records[0])["txs"]:
            tx = json.loads(records[0])["txs"][0]
            try:
                await w3.eth.get_transaction("0x" + tx)
                return "0x" + tx
            except Exception:  # recorded, not sent yet
                pass
        await asyncio.sleep(0.05)
