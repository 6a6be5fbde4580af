"""A settler in a process of its own, settling orders as one job, for the test that kills it
with SIGKILL mid-job: ``python -m tests.support.settle_some '<json>'`` (the node's URL, the
deployment file, the journal, the operator key's environment variable, the orders, each with
what its wallet signed)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from eth_account import Account
from web3 import AsyncWeb3

from chain.deploy import contract
from chain.deployment import ChainDeployment
from chain.mints import Mint, MintsWaiting
from chain.provider import node_provider
from chain.settler import Settler, SettleSettings
from solver.core.orders import OrderSnapshot, OrderStatus
from solver.core.signed_terms import SignedTerms
from solver.journal.store import Journal


def snapshot(order: dict[str, Any]) -> OrderSnapshot:
    name = order.get("name", "o1")
    return OrderSnapshot(order["id"], order.get("account", "alice"), name, name,
                         order["index"], "USDC", Decimal(order["collateral"]),
                         Decimal(order["spent"]), Decimal(order["fees"]),
                         Decimal(order["units"]), OrderStatus.FILLED, None, order["wallet"],
                         None, None)


def waiting(orders: list[dict[str, Any]]) -> MintsWaiting:
    """The mints of ``orders``, as the settler's memory of the events holds them."""
    mints = MintsWaiting()
    for order in orders:
        mints.orders[order["id"]] = snapshot(order)
        terms = dict(order["signed"])
        terms["most"], terms["limit"] = Decimal(terms["most"]), Decimal(terms["limit"])
        mints.terms[order["id"]] = SignedTerms(**terms)
    return mints


async def settle(spec: dict[str, Any]) -> None:
    w3: AsyncWeb3[Any] = AsyncWeb3(node_provider(spec["rpc"]))
    deployment = ChainDeployment.load(Path(spec["deployment"]))
    journal = Journal.open(Path(spec["journal"]))
    settler = Settler(w3, contract(w3, "CollateralVault", deployment.vault), deployment,
                      Account.from_key(os.environ[spec["key_env"]]), journal, print,
                      lambda: 0, "test", 6, waiting(spec["orders"]),
                      SettleSettings(confirmations=0, receipt_timeout_s=3600))
    mints = [Mint(o["id"], 1, Decimal(o["units"])) for o in spec["orders"]]
    print(await settler.settle_all(mints), flush=True)


if __name__ == "__main__":
    asyncio.run(settle(json.loads(sys.argv[1])))
