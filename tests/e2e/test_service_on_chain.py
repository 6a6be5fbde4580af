"""The whole service on anvil: a user deposits into the vault, orders over FIX, is charged and
minted by a settlement of the order its wallet signed, and takes collateral back with a
withdrawal; the FIX reports and the chain agree."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path
from typing import Any

from chain.deploy import contract, deploy_local, transact
from chain.settler import SettleSettings
from chain.watcher import WatchSettings, from_units
from mocks.fix_client import messages
from mocks.fix_client.wallet import Vault, Wallet
from solver.service.chain_link import ChainLink
from solver.service.order_signing import order_signing
from tests.support.chains import chain
from tests.support.exchange import run, until
from tests.support.service import field_of, report_where, service, setup

USDC = 10**6


def test_deposit_order_settlement_and_withdrawal_on_anvil(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with chain("anvil") as anvil:
            w3 = anvil.w3
            owner, treasury, alice_wallet = (await w3.eth.accounts)[:3]
            deployment, operator = await deploy_local(
                w3, owner, treasury, 3600, {"SY2": "Two assets"})
            usdc = contract(w3, "MockUSDC", deployment.collateral)
            vault = contract(w3, "CollateralVault", deployment.vault)
            token = contract(w3, "IndexToken", deployment.index_tokens["SY2"])
            await transact(w3, alice_wallet, usdc.functions.mint(alice_wallet, 6000 * USDC))
            await transact(w3, alice_wallet, usdc.functions.approve(vault.address, 6000 * USDC))
            deposited = await transact(w3, alice_wallet, vault.functions.deposit(6000 * USDC, 0))
            # the transaction and the ordinal among the vault's events in it (USDC's Transfer
            # comes first in the block's log indexes, and counts not)
            deposit_log = f"0x{bytes(deposited['transactionHash']).hex()}:0"
            link = ChainLink(w3, deployment, operator, {"alice": alice_wallet},
                             watch=WatchSettings(confirmations=0, poll_s=0.05),
                             settle=SettleSettings(confirmations=0, poll_s=0.05))
            signing = order_signing(deployment, setup(), [("alice", alice_wallet)])
            wallet = Wallet(anvil.key(alice_wallet), Vault(
                deployment.chain_id, deployment.vault, dict(deployment.index_tokens)))
            async with service(tmp_path, chain=link, signing=signing) as s:
                alice = await s.client("alice")
                credited = await report_where(alice, t35="BA")  # DepositTxHash: tx:ordinal
                await until(lambda: s.runtime.engine.ledger.balance(
                    "alice", "USDC").deposited == D(6000), what="the deposit credited")
                assert field_of(credited, messages.DEPOSIT_TX_HASH) == deposit_log
                signed = wallet.sign("o1", "SY2", D(1000), D(1100),
                                     datetime.now(UTC) + timedelta(days=1), 50)
                await alice.send(messages.new_order("o1", "SY2", D(1000), signed=signed))
                await report_where(alice, 20, t150="F")  # a part fills; the rest waits
                await alice.send(messages.cancel("c1", "o1", "SY2"))
                mint = await report_where(alice, 20, t150="B")
                tx_hash = field_of(mint, messages.MINT_TX_HASH)
                assert tx_hash is not None
                receipt = await w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
                assert receipt["status"] == 1
                minted = D(field_of(mint, 20002) or "0")
                assert from_units(await token.functions.balanceOf(alice_wallet).call(),
                                  18) == minted > 0
                order = s.runtime.engine.order("alice", "o1")
                assert order is not None
                assert from_units(await vault.functions.balances(alice_wallet).call(),
                                  6) == D(6000) - order.spent
                assert s.chain is not None
                await until(lambda: "alice" in s.chain.reconciler.checks,  # type: ignore[union-attr]
                            what="the settlement reconciled")
                check = s.chain.reconciler.checks["alice"]
                assert check.agrees and check.ledger == D(6000) - order.spent

                before: Any = await usdc.functions.balanceOf(alice_wallet).call()
                await transact(w3, alice_wallet, vault.functions.request_withdrawal(500 * USDC))
                await until(lambda: s.runtime.engine.ledger.balance(
                    "alice", "USDC").withdrawn == D(500), what="the withdrawal paid", timeout=20)
                assert await usdc.functions.balanceOf(alice_wallet).call() == before + 500 * USDC
                aside = await report_where(alice, t35="BA",
                                           t58="set aside for the withdrawal you asked for")
                assert field_of(aside, 53) == "500"
                paid = await report_where(alice, t35="BA", t58="withdrawn from the vault")
                assert field_of(paid, 53) == "500"
                await alice.send(messages.collateral_inquiry("i1"))
                answer = await report_where(alice, t35="BA", t909="i1")
                assert D(field_of(answer, 900) or "0") == D(5500) - order.spent
                assert from_units(await vault.functions.balances(alice_wallet).call(),
                                  6) == D(5500) - order.spent
    run(scenario(), 90)
