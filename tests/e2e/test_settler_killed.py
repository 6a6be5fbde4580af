"""A settler killed with SIGKILL after it sent its settlement, before the settlement was
mined, and started again: the order is charged and minted exactly once."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from decimal import Decimal as D
from pathlib import Path

from chain.deploy import contract, deploy_local, transact
from chain.mints import Mint, MintsWaiting
from chain.settler import Settler, SettleSettings
from solver.core.commands import MintConfirmed
from solver.core.setup import EngineSetup
from solver.journal.store import Journal
from tests.support.builders import index, params, rules
from tests.support.chains import Anvil, chain
from tests.support.settle_one import snapshot

ROOT = Path(__file__).parent.parent.parent
USDC = 10**6


def test_a_settler_killed_mid_job_and_restarted_settles_exactly_once(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with chain("anvil") as node:
            assert isinstance(node, Anvil)
            w3 = node.w3
            owner, treasury, alice = (await w3.eth.accounts)[:3]
            deployment, operator = await deploy_local(
                w3, owner, treasury, 3600, {"SY2": "Two assets"})
            deployment.save(tmp_path / "chain.json")
            usdc = contract(w3, "MockUSDC", deployment.collateral)
            vault = contract(w3, "CollateralVault", deployment.vault)
            await transact(w3, alice, usdc.functions.mint(alice, 1000 * USDC))
            await transact(w3, alice, usdc.functions.approve(vault.address, 1000 * USDC))
            await transact(w3, alice, vault.functions.deposit(1000 * USDC, 0))
            journal_path = tmp_path / "journal.db"
            Journal.create(journal_path, EngineSetup((index(),), (rules("A1"), rules("A2")),
                                                     params())).close()
            order = {"id": 1, "index": "SY2", "collateral": "1000", "spent": "998.5",
                     "fees": "1.5", "units": "0.99", "wallet": alice}
            spec = {"rpc": str(w3.provider.endpoint_uri),  # type: ignore[attr-defined]
                    "deployment": str(tmp_path / "chain.json"), "journal": str(journal_path),
                    "key_env": "OPERATOR_KEY", "order": order}
            await node.automine(False)  # the settlement waits in the pool, unmined
            process = subprocess.Popen(
                [sys.executable, "-m", "tests.support.settle_one", json.dumps(spec)], cwd=ROOT,
                env={**os.environ, "OPERATOR_KEY": operator.key.hex()})
            try:
                sent = await _pending_settlement(w3, journal_path)
            finally:
                process.send_signal(signal.SIGKILL)
                process.wait()
            assert await w3.eth.get_transaction_count(operator.address) == 0  # not mined
            await node.automine(True)
            await node.mine(1)  # the killed settler's transaction is mined now

            with Journal.open(journal_path) as journal:
                mints = MintsWaiting()
                mints.orders[1] = snapshot(order)
                again = Settler(w3, vault, deployment, operator, journal, print, lambda: 0,
                                "test", 6, mints, SettleSettings(confirmations=0))
                confirmed = await again.settle(Mint(1, 1, D("0.99")))
            assert isinstance(confirmed, MintConfirmed) and confirmed.tx_hash == sent
            token = contract(w3, "IndexToken", deployment.index_tokens["SY2"])
            assert await token.functions.totalSupply().call() == 99 * 10**16
            assert await w3.eth.get_transaction_count(operator.address) == 1  # nothing more
            assert await vault.functions.balances(alice).call() == int(D("1.5") * USDC)
    asyncio.run(asyncio.wait_for(scenario(), 120))


async def _pending_settlement(w3: object, journal_path: Path) -> str:
    """The hash of the settlement the subprocess recorded and sent, once the node has it."""
    while True:
        with Journal.open(journal_path, verify=False) as journal:
            record = journal.record("settlement:1")
        if record:
            tx = json.loads(record)["txs"][0]
            try:
                await w3.eth.get_transaction("0x" + tx)  # type: ignore[attr-defined]
                return "0x" + tx
            except Exception:  # recorded, not sent yet
                pass
        await asyncio.sleep(0.05)
