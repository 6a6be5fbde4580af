"""Signed mints for the settler's benchmarks: wallets whose keys the benchmark holds, their
collateral deposited in the vault, and orders each signed by its wallet (EIP-712), handed to
the settler as the engine does (``MintsWaiting``: the order's snapshot and its signed terms).
The vault settles only signed orders (``settle_batch``)."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from rich.progress import track
from web3 import AsyncWeb3
from web3.types import Wei

from chain.deploy import contract, transact
from chain.deployment import ChainDeployment
from chain.mints import Mint, MintsWaiting
from solver.core.orders import OrderSnapshot, OrderStatus
from solver.core.signed_terms import SignedTerms
from solver.signed_orders import Domain, signed_by

USDC = 10**6
SPENT, FEES, UNITS = Decimal("10"), Decimal("0.01"), Decimal("0.01")
"""Each order: 10 USDC charged (fees 0.01 of it) for 0.01 units of the index."""
LIMIT, MAX_FEE_BPS = Decimal(1100), 50
"""What each wallet signs: at most 1,100 USDC a unit, fees at most 0.5 % of each charge (the
charge is 1,000 USDC a unit, fees 0.1 %)."""


async def deposited_wallets(w3: AsyncWeb3[Any], deployment: ChainDeployment, count: int,
                            usdc: int, *, describe: str = "funding the wallets",
                            ) -> list[LocalAccount]:
    """``count`` new wallets, each given gas by the node's first account, ``usdc`` USDC
    minted, the vault approved and all of it deposited."""
    funder = (await w3.eth.accounts)[0]
    collateral = contract(w3, "MockUSDC", deployment.collateral)
    vault = contract(w3, "CollateralVault", deployment.vault)
    wallets: list[LocalAccount] = [Account.create() for _ in range(count)]
    for wallet in track(wallets, description=describe, disable=count < 10):
        await w3.eth.wait_for_transaction_receipt(await w3.eth.send_transaction(
            {"from": funder, "to": wallet.address, "value": Wei(10**18)}))
        await transact(w3, wallet, collateral.functions.mint(wallet.address, usdc * USDC))
        await transact(w3, wallet, collateral.functions.approve(vault.address, 2**256 - 1))
        await transact(w3, wallet, vault.functions.deposit(usdc * USDC, 0))
    return wallets


def sign_mint(mints: MintsWaiting, deployment: ChainDeployment, wallet: LocalAccount,
              order_id: int, deadline_s: int, account: str = "desk") -> Mint:
    """Order ``order_id`` of ``wallet`` (named ``o<order id>``: one name per order and
    wallet), filled and signed by the wallet, in ``mints``; the mint to ask for."""
    name = f"o{order_id}"
    mints.terms[order_id] = signed_by(
        SignedTerms(wallet.address, name, SPENT, LIMIT, MAX_FEE_BPS, deadline_s, ""),
        "0x" + bytes(wallet.key).hex(), deployment.index_tokens["IX"], 6,
        Domain(deployment.chain_id, deployment.vault))
    mints.orders[order_id] = OrderSnapshot(
        order_id, account, name, name, "IX", "USDC", SPENT, SPENT, FEES, UNITS,
        OrderStatus.FILLED, None, wallet.address, None, None, LIMIT)
    return Mint(order_id, 1, UNITS)


def signed_orders(deployment: ChainDeployment, wallets: list[LocalAccount],
                  order_ids: Iterable[int], deadline_s: int,
                  mints: MintsWaiting | None = None) -> tuple[MintsWaiting, list[Mint]]:
    """The orders ``order_ids``, round-robin over the wallets, each signed, in ``mints`` (new
    ones if None), and the mints to ask for."""
    mints = MintsWaiting() if mints is None else mints
    ids = list(order_ids)
    asked = [sign_mint(mints, deployment, wallets[order_id % len(wallets)], order_id,
                       deadline_s)
             for order_id in track(ids, description="signing the orders", disable=len(ids) < 10)]
    return mints, asked
