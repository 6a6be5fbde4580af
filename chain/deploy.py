"""Deploying the contracts from their artifacts (what a deployment is, the file it writes:
``chain.deployment``)."""

from __future__ import annotations

from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from web3 import AsyncWeb3
from web3.contract import AsyncContract
from web3.types import Wei

from chain import artifacts
from chain.deployment import ChainDeployment


def contract(w3: AsyncWeb3[Any], name: str, address: ChecksumAddress) -> AsyncContract:
    return w3.eth.contract(address=address, abi=artifacts.load(name).abi)


MAX_INITIAL_TOKENS = 16
"""The vault's ``MAX_INITIAL_TOKENS``: index tokens created with it."""

Sender = ChecksumAddress | LocalAccount
"""An account the node holds (anvil's, the embedded chain's), or a key held here."""


async def transact(w3: AsyncWeb3[Any], sender: Sender, call: Any) -> Any:
    """Send a contract call (or constructor) from ``sender``; the receipt, once mined. A call
    the node predicts will revert raises before anything is sent."""
    if not isinstance(sender, LocalAccount):
        return await w3.eth.wait_for_transaction_receipt(await call.transact({"from": sender}))
    tx = await call.build_transaction({"from": sender.address})
    tx["nonce"] = await w3.eth.get_transaction_count(sender.address, "pending")
    signed = sender.sign_transaction(tx)
    return await w3.eth.wait_for_transaction_receipt(
        await w3.eth.send_raw_transaction(signed.raw_transaction))


def address_of(sender: Sender) -> ChecksumAddress:
    return sender.address if isinstance(sender, LocalAccount) else sender


async def deploy(w3: AsyncWeb3[Any], owner: Sender, name: str, *args: Any) -> AsyncContract:
    """Deploy ``name`` from its artifact."""
    art = artifacts.load(name)
    receipt = await transact(w3, owner, w3.eth.contract(
        abi=art.abi, bytecode=art.bytecode).constructor(*args))
    return contract(w3, name, created(receipt, name))


async def deploy_blueprint(w3: AsyncWeb3[Any], owner: Sender, name: str) -> ChecksumAddress:
    """Deploy ``name``'s ERC-5202 blueprint: its initcode on chain, for contracts to create
    copies of it."""
    blueprint = artifacts.load(name).blueprint
    if blueprint is None:
        raise ValueError(f"{name} has no blueprint in its artifact")
    receipt = await transact(w3, owner, w3.eth.contract(abi=[], bytecode=blueprint).constructor())
    return created(receipt, f"{name}'s blueprint")


def created(receipt: Any, what: str) -> ChecksumAddress:
    address: ChecksumAddress | None = receipt["contractAddress"]
    if address is None:
        raise RuntimeError(f"deploying {what} created no contract")
    return address


def default_grace(withdrawal_delay_s: int) -> int:
    """How long after a withdrawal request settlements may still spend what it asks for: a
    quarter of the delay, at most an hour (settlements land within seconds to minutes)."""
    return min(withdrawal_delay_s // 4, 3600)


def default_change_delay(withdrawal_delay_s: int) -> int:
    """How long an announced operator, treasury or index token waits: twice the withdrawal
    delay, so a user who reads the announcement a delay late can still leave first."""
    return 2 * withdrawal_delay_s


async def deploy_all(w3: AsyncWeb3[Any], owner: Sender, operator: ChecksumAddress,
                     treasury: ChecksumAddress, withdrawal_delay_s: int,
                     indexes: dict[str, str],
                     collateral: ChecksumAddress | None = None,
                     grace_s: int | None = None,
                     change_delay_s: int | None = None) -> ChainDeployment:
    """A vault over ``collateral`` (a MockUSDC deployed here if None) with one token per index
    (``indexes``: symbol -> name), which the vault creates itself from the IndexToken
    blueprint; ``grace_s`` and ``change_delay_s``: the vault's withdrawal grace and change
    delay (``default_grace`` and ``default_change_delay`` if None)."""
    if len(indexes) > MAX_INITIAL_TOKENS:
        raise ValueError(f"{len(indexes)} indexes: a vault is deployed with at most "
                         f"{MAX_INITIAL_TOKENS}; announce the others")
    if collateral is None:
        collateral = (await deploy(w3, owner, "MockUSDC")).address
    grace = default_grace(withdrawal_delay_s) if grace_s is None else grace_s
    change_delay = (default_change_delay(withdrawal_delay_s) if change_delay_s is None
                    else change_delay_s)
    blueprint = await deploy_blueprint(w3, owner, "IndexToken")
    symbols = sorted(indexes)
    art = artifacts.load("CollateralVault")
    receipt = await transact(w3, owner, w3.eth.contract(
        abi=art.abi, bytecode=art.bytecode).constructor(
            collateral, treasury, operator, withdrawal_delay_s, grace, change_delay, blueprint,
            [indexes[symbol] for symbol in symbols], symbols))
    vault = contract(w3, "CollateralVault", created(receipt, "CollateralVault"))
    added = vault.events.IndexTokenAdded().process_receipt(receipt)
    tokens = {entry["args"]["symbol"]: entry["args"]["token"] for entry in added}
    return ChainDeployment(await w3.eth.chain_id, collateral, vault.address, tokens,
                           int(receipt["blockNumber"]))


async def deploy_local(w3: AsyncWeb3[Any], owner: ChecksumAddress, treasury: ChecksumAddress,
                       withdrawal_delay_s: int, indexes: dict[str, str],
                       ) -> tuple[ChainDeployment, LocalAccount]:
    """MockUSDC and the rest, from an account the node holds, settled by a new operator key
    the owner funds with gas: the demo's, the tests' and the benchmarks'."""
    operator: LocalAccount = Account.create()
    await w3.eth.wait_for_transaction_receipt(await w3.eth.send_transaction(
        {"from": owner, "to": operator.address, "value": Wei(10**20)}))
    deployment = await deploy_all(w3, owner, operator.address, treasury, withdrawal_delay_s,
                                  indexes)
    return deployment, operator
