"""The vault's contracts on web3's embedded chain (EthereumTesterProvider, py-evm), deployed from
the committed artifacts, and the steps the contract tests share: a deposit, a withdrawal
request, the logs a contract emitted."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from eth_tester.exceptions import TransactionFailed
from web3 import EthereumTesterProvider, Web3
from web3.contract import Contract
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD

from chain import artifacts
from chain.keys import order_key

DELAY = 3600
GRACE = 600
CHANGE_DELAY = 2 * DELAY
USDC = 10**6  # MockUSDC has 6 decimals
UNIT = 10**18  # IndexToken has 18
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
    base: Any  # the eth-tester snapshot right after deployment and funding

    def tester(self) -> Any:
        return self.w3.provider.ethereum_tester  # type: ignore[attr-defined]

    def now(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def travel(self, timestamp: int) -> None:
        """The next transaction runs at ``timestamp`` or later."""
        if timestamp > self.now() + 1:
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


def deploy() -> Chain:
    """A fresh embedded chain with MockUSDC, a vault and one index token; users funded and
    approved."""
    w3 = Web3(EthereumTesterProvider())
    owner, operator, treasury, *users = w3.eth.accounts[:6]
    usdc = deploy_contract(w3, "MockUSDC", owner)
    vault = deploy_vault(w3, owner, usdc.address, treasury, operator)
    token = index_token(w3, vault, "TOP10")
    for user in users:
        usdc.functions.mint(user, 1_000_000 * USDC).transact({"from": user})
        usdc.functions.approve(vault.address, 2**256 - 1).transact({"from": user})
    base = w3.provider.ethereum_tester.take_snapshot()  # type: ignore[attr-defined]
    return Chain(w3, usdc, vault, token, owner, operator, treasury, tuple(users), base)


@functools.cache
def shared_chain() -> Chain:
    return deploy()


def key(c: Chain, uid: str) -> bytes:
    return order_key(c.w3.eth.chain_id, c.vault.address, uid.encode())


def settle(c: Chain, user: str, spent: int, units: int, *, uid: str = "dep1/o1",
           fees: int = 0, sender: str | None = None) -> Any:
    tx = c.vault.functions.settle(key(c, uid), user, c.token.address, spent, units, fees,
                                  "CL-" + uid).transact({"from": sender or c.operator})
    return c.w3.eth.wait_for_transaction_receipt(tx)


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


