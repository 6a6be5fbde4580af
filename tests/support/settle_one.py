"""A settler in a process of its own, settling one order, for the test that kills it with
SIGKILL mid-job: ``python -m tests.support.settle_one '<json>'`` (the node's URL, the
deployment file, the journal, the operator key's environment variable, the order)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from eth_account import Account
from web3 import AsyncHTTPProvider, AsyncWeb3

from chain.deploy import ChainDeployment, contract
from chain.mints import Mint, MintsWaiting
from chain.settler import Settler, SettleSettings
from solver.core.orders import OrderSnapshot, OrderStatus
from solver.journal.store import Journal


def snapshot(order: dict[str, Any]) -> OrderSnapshot:
    return OrderSnapshot(order["id"], "alice", "o1", "o1", order["index"], "USDC",
                         Decimal(order["collateral"]), Decimal(order["spent"]),
                         Decimal(order["fees"]), Decimal(order["units"]), OrderStatus.FILLED,
                         None, order["wallet"], None, None)


async def settle(spec: dict[str, Any]) -> None:
    w3: AsyncWeb3[Any] = AsyncWeb3(AsyncHTTPProvider(spec["rpc"]))
    deployment = ChainDeployment.load(Path(spec["deployment"]))
    journal = Journal.open(Path(spec["journal"]))
    order = spec["order"]
    mints = MintsWaiting()
    mints.orders[order["id"]] = snapshot(order)
    settler = Settler(w3, contract(w3, "CollateralVault", deployment.vault), deployment,
                      Account.from_key(os.environ[spec["key_env"]]), journal, print,
                      lambda: 0, "test", 6, mints,
                      SettleSettings(confirmations=0, receipt_timeout_s=3600))
    print(await settler.settle(Mint(order["id"], 1, Decimal(order["units"]))), flush=True)


if __name__ == "__main__":
    asyncio.run(settle(json.loads(sys.argv[1])))
