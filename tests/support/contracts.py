"""The vault's contracts on web3's embedded chain (EthereumTesterProvider, py-evm), deployed from
the committed artifacts, and the steps the contract tests share: a deposit, an order a user
signed and its fills settled, a withdrawal request, the logs a contract emitted."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from eth_tester.exceptions import TransactionFailed
from web3 import EthereumTesterProvider, Web3
from web3.contract import Contract
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD

from chain import artifacts
from chain.keys import order_key
from solver.signed_orders import Domain, SignedOrder, sign

DELAY = 3600
GRACE = 600
CHANGE_DELAY = 2 * DELAY
USDC = 10**6  # MockUSDC has 6 decimals
UNIT = 10**18  # IndexToken has 18
HOUR = 3600
YEAR = 365 * 24 * HOUR
REVERTS = (ContractLogicError, TransactionFailed)
ZERO = "0x" + "00" * 20


@dataclass(frozen=True)
class Chain:
    w3: Web3
    usdc: Contract
    vault: Contract
    token: Contract
    owner: str
    operator: str
    treasury: str
    users: tuple[str, ...]
    base: Any  # the eth-tester snapshot right after deployment and funding (None on anvil)
    keys: Mapping[str, str] = field(default_factory=dict)
    """The accounts' keys on anvil (eth-tester's are asked of it)."""

    def tester(self) -> Any:
        return self.w3.provider.ethereum_tester  # type: ignore[attr-defined]

    def now(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def travel(self, timestamp: int) -> None:
        """The next transaction runs at ``timestamp`` or later (eth-tester's pending block
        has its time already: after a rollback, the clock's, which may be later)."""
        if self.base is None:
            if timestamp <= self.now() + 1:
                return
            self.w3.provider.make_request("evm_setNextBlockTimestamp", [timestamp])  # type: ignore[arg-type]
        elif timestamp > int(self.w3.eth.get_block("pending")["timestamp"]):
            self.tester().time_travel(timestamp)


def deploy_contract(w3: Web3, name: str, sender: str, *args: Any) -> Contract:
    art = artifacts.load(name)
    factory = w3.eth.contract(abi=art.abi, bytecode=art.bytecode)
    tx = factory.constructor(*args).transact({"from": sender})
    address = w3.eth.wait_for_transaction_receipt(tx)["contractAddress"]
    return w3.eth.contract(address=address, abi=art.abi)


def deploy_blueprint(w3: Web3, sender: str) -> str:
    code = artifacts.load("IndexToken").blueprint
    tx = w3.eth.contract(abi=[], bytecode=code).constructor().transact({"from": sender})
    return str(w3.eth.wait_for_transaction_receipt(tx)["contractAddress"])


def deploy_vault(w3: Web3, owner: str, usdc: str, treasury: str, operator: str,
                 delay: int = DELAY, grace: int = GRACE, change_delay: int = CHANGE_DELAY,
                 blueprint: str | None = None,
                 tokens: tuple[tuple[str, str], ...] = (("Top 10 Index", "TOP10"),)) -> Contract:
    """A vault and the index tokens it creates (name, symbol)."""
    return deploy_contract(w3, "CollateralVault", owner, usdc, treasury, operator, delay, grace,
                           change_delay, blueprint or deploy_blueprint(w3, owner),
                           [name for name, _ in tokens], [symbol for _, symbol in tokens])


def index_token(w3: Web3, vault: Contract, symbol: str, receipt: Any | None = None) -> Contract:
    """The token ``vault`` created for ``symbol``, from its ``IndexTokenAdded`` event."""
    found = (logs(vault, "IndexTokenAdded", receipt) if receipt is not None else
             vault.events.IndexTokenAdded().get_logs(from_block=0))
    (address,) = [e["args"]["token"] for e in found if e["args"]["symbol"] == symbol]
    return w3.eth.contract(address=address, abi=artifacts.load("IndexToken").abi)


def deploy(w3: Web3 | None = None, keys: Mapping[str, str] | None = None) -> Chain:
    """MockUSDC, a vault and one index token on a fresh embedded chain, or on ``w3`` whose
    accounts have ``keys`` (anvil); users funded and approved."""
    embedded = w3 is None
    w3 = w3 or Web3(EthereumTesterProvider())
    owner, operator, treasury, *users = w3.eth.accounts[:6]
    usdc = deploy_contract(w3, "MockUSDC", owner)
    vault = deploy_vault(w3, owner, usdc.address, treasury, operator)
    token = index_token(w3, vault, "TOP10")
    for user in users:
        usdc.functions.mint(user, 1_000_000 * USDC).transact({"from": user})
        usdc.functions.approve(vault.address, 2**256 - 1).transact({"from": user})
    base = w3.provider.ethereum_tester.take_snapshot() if embedded else None  # type: ignore[attr-defined]
    return Chain(w3, usdc, vault, token, owner, operator, treasury, tuple(users), base,
                 keys or {})


@functools.cache
def shared_chain() -> Chain:
    return deploy()


def key(c: Chain, uid: str) -> bytes:
    return order_key(c.w3.eth.chain_id, c.vault.address, uid.encode())


def domain(c: Chain) -> Domain:
    return Domain(c.w3.eth.chain_id, c.vault.address)


def user_key(c: Chain, user: str) -> str:
    if user in c.keys:
        return c.keys[user]
    keys = c.tester().backend.account_keys
    (found,) = [k for k in keys if k.public_key.to_checksum_address() == user]
    return str(found.to_hex())


def order(c: Chain, user: str, name: str = "o1", *, most: int = 1_000 * USDC,
          limit: int = 100 * USDC, fee_bps: int = 50, deadline: int | None = None) -> SignedOrder:
    return SignedOrder(user, c.token.address, most, limit, fee_bps,
                       deadline if deadline is not None else c.now() + HOUR, name)


def fill(c: Chain, o: SignedOrder, spent: int, units: int, *, fees: int = 0,
         before: int = 0, signature: bytes | None = None) -> tuple[Any, ...]:
    """The vault's ``Settlement`` of one fill of ``o``."""
    sig = signature if signature is not None else sign(o, domain(c), user_key(c, o.user))
    uid = f"{o.cl_ord_id}/{before}".encode()
    return (o.as_call(), sig, order_key(c.w3.eth.chain_id, c.vault.address, uid), before, spent,
            units, fees)


def settle_batch(c: Chain, *fills: tuple[Any, ...], sender: str | None = None) -> Any:
    tx = c.vault.functions.settle_batch(list(fills)).transact({"from": sender or c.operator})
    return c.w3.eth.wait_for_transaction_receipt(tx)


def skipped(c: Chain, receipt: Any) -> list[str]:
    return [e["args"]["reason"] for e in logs(c.vault, "SettlementSkipped", receipt)]


def filled(c: Chain, o: SignedOrder) -> int:
    order_id = c.vault.functions.order_id(o.user, o.cl_ord_id).call()
    return int(c.vault.functions.order_state(order_id).call()[0])


class Skipped(Exception):
    """The vault skipped the fill; the message is its reason."""


def settle(c: Chain, user: str, spent: int, units: int, *, uid: str = "o1", fees: int = 0,
           before: int = 0, sender: str | None = None) -> Any:
    """One fill of ``spent`` (``fees`` of it) for ``units``, of an order ``user`` signed under
    ``uid`` for that much at that price, any fee and a distant deadline, settled alone: its
    receipt, or ``Skipped`` with the vault's reason."""
    limit = -(-spent * UNIT // units) if units else 0
    signed = order(c, user, uid, most=before + spent, limit=limit, fee_bps=10_000,
                   deadline=c.now() + YEAR)
    receipt = settle_batch(c, fill(c, signed, spent, units, fees=fees, before=before),
                           sender=sender)
    for reason in skipped(c, receipt):
        raise Skipped(reason)
    return receipt


def deposit(c: Chain, user: str, amount: int, ref: int = 0) -> Any:
    tx = c.vault.functions.deposit(amount, ref).transact({"from": user})
    return c.w3.eth.wait_for_transaction_receipt(tx)


def logs(contract: Contract, event: str, receipt: Any) -> list[Any]:
    """The ``event`` logs that ``contract`` itself emitted in ``receipt`` (web3 decodes every log
    with a matching signature, so USDC's and the index token's Transfer would mix)."""
    decoded = contract.events[event]().process_receipt(receipt, errors=DISCARD)
    return [e for e in decoded if e["address"] == contract.address]


def balance(c: Chain, user: str) -> int:
    return int(c.vault.functions.balances(user).call())


def request(c: Chain, user: str, amount: int) -> int:
    """Ask for ``amount`` (the vault asks for at most the balance); when it is ready."""
    asked = min(amount, balance(c, user))
    tx = c.vault.functions.request_withdrawal(amount).transact({"from": user})
    receipt = c.w3.eth.wait_for_transaction_receipt(tx)
    (event,) = logs(c.vault, "WithdrawalRequested", receipt)
    assert event["args"]["amount"] == asked
    assert event["args"]["locked_at"] == event["args"]["ready_at"] - DELAY + GRACE
    return int(event["args"]["ready_at"])


