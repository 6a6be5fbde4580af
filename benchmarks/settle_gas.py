"""Gas per order of the vault's ``settle_batch`` on anvil (30M-gas blocks): signed orders, each
checked on-chain (EIP-712 signature, deadline, cancellation, signed collateral, limit price,
fee bound), many to a transaction with one transfer to the treasury.

For each batch size: the gas of one transaction and per order, for users receiving the index
token for the first time (the token's balance slot written from zero) and for users who hold
it already (a desk's second order: the usual case). A batch of one is what an order settled
alone costs: the vault settles nothing but signed orders in batches (its unsigned single
``settle`` is gone). Also how many orders a 30M block holds.

``--sizes`` sets the batch sizes (default 1,10,50,100,128).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eth_account import Account
from eth_account.signers.local import LocalAccount
from rich.console import Console
from rich.table import Table
from web3 import AsyncWeb3
from web3.logs import DISCARD

from chain.deploy import contract, deploy_local, transact
from chain.keys import order_key
from chain.local_node import anvil
from chain.provider import node_provider
from solver.signed_orders import Domain, SignedOrder, sign

USDC = 10**6
UNIT = 10**18
BLOCK_GAS = 30_000_000


async def fund(w3: AsyncWeb3[Any], usdc: Any, vault: Any, user: LocalAccount) -> None:
    """A user with gas, 10,000 USDC and all of it deposited in the vault."""
    await w3.provider.make_request("anvil_setBalance", [user.address, hex(10**20)])  # type: ignore[arg-type]
    await w3.provider.make_request("anvil_impersonateAccount", [user.address])  # type: ignore[arg-type]
    await transact(w3, user.address, usdc.functions.mint(user.address, 10_000 * USDC))
    await transact(w3, user.address, usdc.functions.approve(vault.address, 2**256 - 1))
    await transact(w3, user.address, vault.functions.deposit(10_000 * USDC, 0))


def settlement(users: list[LocalAccount], round_: int, token: str, domain: Domain,
               now: int) -> list[tuple[Any, ...]]:
    """One fill of 100 USDC for 1 unit, fees 0.2 USDC, per user (each a new signed order)."""
    fills = []
    for user in users:
        order = SignedOrder(user.address, token, 1_000 * USDC, 110 * USDC, 50, now + 3600,
                            f"bench-{round_}-{user.address[2:10]}")
        key = order_key(domain.chain_id, domain.vault, f"{order.cl_ord_id}".encode())
        fills.append((order.as_call(), sign(order, domain, user.key.to_0x_hex()), key, 0,
                      100 * USDC, UNIT, USDC // 5))
    return fills


async def measure(w3: AsyncWeb3[Any], sizes: list[int]) -> list[tuple[str, int, int, int]]:
    owner, treasury = (await w3.eth.accounts)[0], (await w3.eth.accounts)[7]
    deployment, operator = await deploy_local(w3, owner, treasury, 3600, {"TOP10": "Top 10"})
    usdc = contract(w3, "MockUSDC", deployment.collateral)
    vault = contract(w3, "CollateralVault", deployment.vault)
    token = deployment.index_tokens["TOP10"]
    domain = Domain(deployment.chain_id, deployment.vault)
    rows = []
    # the first settlement ever writes the token's supply and the treasury's balance from
    # zero; every one after finds them written: one order first, not counted
    first = Account.create()
    await fund(w3, usdc, vault, first)
    now = int((await w3.eth.get_block("latest"))["timestamp"])
    await transact(w3, operator, vault.functions.settle_batch(
        settlement([first], 0, token, domain, now)))
    for size in sizes:
        users = [Account.create() for _ in range(size)]
        for user in users:
            await fund(w3, usdc, vault, user)
        for round_, holders in ((0, "first-time holders"), (1, "holders already")):
            now = int((await w3.eth.get_block("latest"))["timestamp"])
            call = vault.functions.settle_batch(settlement(users, round_, token, domain, now))
            receipt = await transact(w3, operator, call)
            settled = len(vault.events.OrderSettled().process_receipt(receipt, errors=DISCARD))
            assert settled == size, f"{size - settled} of {size} skipped"
            rows.append((f"settle_batch, {holders}", size, receipt["gasUsed"],
                         receipt["gasUsed"] // size))
    return rows


async def main(sizes: list[int]) -> None:
    async with anvil("--gas-limit", str(BLOCK_GAS)) as url:
        w3: AsyncWeb3[Any] = AsyncWeb3(node_provider(url))
        try:
            rows = await measure(w3, sizes)
        finally:
            await w3.provider.disconnect()
    table = Table(title="Gas per settled order (anvil, signatures checked on-chain)")
    for column in ("call", "orders", "gas", "gas/order", "orders per 30M block"):
        table.add_column(column, justify="left" if column == "call" else "right")
    for call, orders, gas, per_order in rows:
        table.add_row(call, str(orders), f"{gas:,}", f"{per_order:,}",
                      f"{BLOCK_GAS // per_order:,}")
    Console(width=110).print(table)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1,10,50,100,128")
    args = parser.parse_args()
    asyncio.run(main([int(s) for s in args.sizes.split(",")]))
