"""Deploying the contracts from their artifacts, and what a deployment is: the chain, the
addresses and the block to read events from."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from eth_typing import ChecksumAddress
from web3 import AsyncWeb3
from web3.contract import AsyncContract

from chain import artifacts


@dataclass(frozen=True, slots=True)
class ChainDeployment:
    chain_id: int
    collateral: ChecksumAddress
    vault: ChecksumAddress
    index_tokens: dict[str, ChecksumAddress]
    """index symbol -> its token"""
    start_block: int
    """The vault's deployment block: nothing before it concerns us."""

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: Path) -> ChainDeployment:
        data = json.loads(path.read_text())
        return cls(int(data["chain_id"]), data["collateral"], data["vault"],
                   dict(data["index_tokens"]), int(data["start_block"]))


def contract(w3: AsyncWeb3[Any], name: str, address: ChecksumAddress) -> AsyncContract:
    return w3.eth.contract(address=address, abi=artifacts.load(name).abi)


async def deploy(w3: AsyncWeb3[Any], owner: ChecksumAddress, name: str,
                 *args: Any) -> AsyncContract:
    """Deploy ``name`` from its artifact with an account the node holds (tests, local nodes)."""
    art = artifacts.load(name)
    tx = await w3.eth.contract(abi=art.abi, bytecode=art.bytecode).constructor(
        *args).transact({"from": owner})
    receipt = await w3.eth.wait_for_transaction_receipt(tx)
    address = receipt["contractAddress"]
    if address is None:
        raise RuntimeError(f"deploying {name} created no contract")
    return contract(w3, name, address)


async def deploy_local(w3: AsyncWeb3[Any], owner: ChecksumAddress, operator: ChecksumAddress,
                       treasury: ChecksumAddress, withdrawal_delay_s: int,
                       indexes: dict[str, str]) -> ChainDeployment:
    """MockUSDC, a vault over it and one token per index (``indexes``: symbol -> name),
    each registered with the vault: the embedded chain of the demo and the tests."""
    usdc = await deploy(w3, owner, "MockUSDC")
    vault = await deploy(w3, owner, "CollateralVault", usdc.address, treasury, operator,
                         withdrawal_delay_s)
    start = await w3.eth.block_number
    tokens = {}
    for symbol, name in sorted(indexes.items()):
        token = await deploy(w3, owner, "IndexToken", name, symbol, vault.address)
        await w3.eth.wait_for_transaction_receipt(
            await vault.functions.add_index_token(token.address).transact({"from": owner}))
        tokens[symbol] = token.address
    return ChainDeployment(await w3.eth.chain_id, usdc.address, vault.address, tokens, start)
