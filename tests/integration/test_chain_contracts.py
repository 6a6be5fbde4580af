"""The Vyper contracts on web3's embedded chain (EthereumTesterProvider, py-evm), deployed from the
committed artifacts: deposits, settlement of the orders users signed that charges and mints once
per fill (a fill that does not hold is skipped with the vault's reason), the user's exit after the
delay (chain time moved), the operator's release, pause; a stateful property test over random
sequences of all of them; and the artifacts' freshness against the pinned Vyper."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
)
from web3 import EthereumTesterProvider, Web3

from chain import artifacts
from chain.keys import order_key
from tests.support.contracts import (
    CHANGE_DELAY,
    DELAY,
    GRACE,
    REVERTS,
    UNIT,
    USDC,
    ZERO,
    Chain,
    Skipped,
    balance,
    deploy_blueprint,
    deploy_contract,
    deploy_vault,
    deposit,
    fill,
    index_token,
    key,
    logs,
    order,
    request,
    settle,
    settle_batch,
    shared_chain,
    skipped,
)

ROOT = Path(__file__).parent.parent.parent


def order_state(c: Chain, user: str, uid: str) -> tuple[int, int, int]:
    """What the vault charged against ``user``'s order ``uid``, the block of its last
    settlement (0: none) and when its cancellation takes effect (0: not cancelled)."""
    f = c.vault.functions
    filled, block, cancel_at = f.order_state(f.order_id(user, uid).call()).call()
    return int(filled), int(block), int(cancel_at)


# --- artifacts ----------------------------------------------------------------------------------

def test_artifacts_are_fresh_against_the_pinned_vyper() -> None:
    done = subprocess.run([sys.executable, "-m", "chain.compile", "--check"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_artifacts_name_the_compiler_and_the_source() -> None:
    import hashlib
    for name in ("CollateralVault", "IndexToken", "MockUSDC"):
        art = artifacts.load(name)
        source = (ROOT / "chain" / "contracts" / f"{name}.vy").read_bytes()
        assert art.compiler == "vyper-0.4.3"
        assert art.source_sha256 == hashlib.sha256(source).hexdigest()
        assert art.bytecode.startswith("0x") and len(art.bytecode) > 100


# --- tokens -------------------------------------------------------------------------------------

def test_tokens_decimals_and_only_the_vault_mints(c: Chain) -> None:
    assert c.usdc.functions.decimals().call() == 6
    assert c.token.functions.decimals().call() == 18
    assert c.token.functions.symbol().call() == "TOP10"
    assert c.token.functions.minter().call() == c.vault.address
    for sender in (c.owner, c.operator, c.users[0]):
        with pytest.raises(REVERTS, match="not minter"):
            c.token.functions.mint(sender, 1).transact({"from": sender})


def test_erc20_transfer_and_allowance(c: Chain) -> None:
    a, b, spender = c.users[0], c.users[1], c.users[2]
    deposit(c, a, 100 * USDC)
    settle(c, a, 100 * USDC, 5 * UNIT)
    c.token.functions.transfer(b, 2 * UNIT).transact({"from": a})
    assert c.token.functions.balanceOf(b).call() == 2 * UNIT
    c.token.functions.approve(spender, UNIT).transact({"from": a})
    c.token.functions.transferFrom(a, spender, UNIT).transact({"from": spender})
    assert c.token.functions.allowance(a, spender).call() == 0
    with pytest.raises(REVERTS, match="allowance"):
        c.token.functions.transferFrom(a, spender, 1).transact({"from": spender})
    with pytest.raises(REVERTS, match="balance"):
        c.token.functions.transfer(b, 10 * UNIT).transact({"from": a})
    assert c.token.functions.totalSupply().call() == 5 * UNIT


# --- deposits -----------------------------------------------------------------------------------

def test_deposit_emits_gap_free_ids_and_credits_the_sender(c: Chain) -> None:
    user = c.users[0]
    first = deposit(c, user, 250 * USDC, ref=7)
    second = deposit(c, c.users[1], 1 * USDC, ref=8)
    third = deposit(c, user, 50 * USDC, ref=9)
    events = [logs(c.vault, "Deposited", r)[0]["args"]
              for r in (first, second, third)]
    assert [e["deposit_id"] for e in events] == [0, 1, 2]
    assert dict(events[0]) == {"user": user, "deposit_id": 0, "amount": 250 * USDC, "ref": 7,
                               "balance": 250 * USDC}
    assert events[2]["balance"] == 300 * USDC
    assert balance(c, user) == 300 * USDC
    assert c.vault.functions.deposit_count().call() == 3
    assert c.usdc.functions.balanceOf(c.vault.address).call() == 301 * USDC


def test_deposit_without_allowance_or_funds_credits_nothing(c: Chain) -> None:
    user = c.users[0]
    c.usdc.functions.approve(c.vault.address, 0).transact({"from": user})
    with pytest.raises(REVERTS):
        c.vault.functions.deposit(USDC, 0).transact({"from": user})
    with pytest.raises(REVERTS, match="zero amount"):
        c.vault.functions.deposit(0, 0).transact({"from": c.users[1]})
    assert c.vault.functions.deposit_count().call() == 0


# --- settlement ---------------------------------------------------------------------------------

def test_settle_charges_and_mints_in_one_transaction(c: Chain) -> None:
    user = c.users[0]
    deposit(c, user, 1000 * USDC)
    receipt = settle(c, user, 400 * USDC, 3 * UNIT, fees=2 * USDC, uid="dep1/o42")
    assert receipt["status"] == 1
    assert balance(c, user) == 600 * USDC
    assert c.usdc.functions.balanceOf(c.treasury).call() == 400 * USDC
    assert c.token.functions.balanceOf(user).call() == 3 * UNIT
    assert c.token.functions.totalSupply().call() == 3 * UNIT
    assert order_state(c, user, "dep1/o42") == (400 * USDC, receipt["blockNumber"], 0)
    (event,) = logs(c.vault, "OrderSettled", receipt)
    assert dict(event["args"]) == {  # the fill's key: the order's name and what it filled before
        "order_key": key(c, "dep1/o42/0"), "user": user, "token": c.token.address,
        "collateral_spent": 400 * USDC, "units": 3 * UNIT, "fees": 2 * USDC,
        "cl_ord_id": "dep1/o42", "balance": 600 * USDC}
    # the collateral transfer and the mint are in the same transaction's logs
    transfers = logs(c.usdc, "Transfer", receipt)
    mints = logs(c.token, "Transfer", receipt)
    assert [t["args"]["value"] for t in transfers] == [400 * USDC]
    assert [m["args"]["value"] for m in mints] == [3 * UNIT]


def test_settle_twice_is_skipped_and_changes_nothing(c: Chain) -> None:
    user = c.users[0]
    deposit(c, user, 1000 * USDC)
    first = settle(c, user, 100 * USDC, UNIT)
    with pytest.raises(Skipped, match="already settled"):
        settle(c, user, 100 * USDC, UNIT)
    assert order_state(c, user, "o1") == (100 * USDC, first["blockNumber"], 0)
    assert balance(c, user) == 900 * USDC
    assert c.token.functions.totalSupply().call() == UNIT


def test_settle_beyond_the_balance_is_skipped(c: Chain) -> None:
    user = c.users[0]
    deposit(c, user, 100 * USDC)
    deposit(c, c.users[1], 1000 * USDC)  # other users' collateral is not the user's
    with pytest.raises(Skipped, match="insufficient balance"):
        settle(c, user, 100 * USDC + 1, UNIT)
    assert order_state(c, user, "o1") == (0, 0, 0)
    settle(c, user, 100 * USDC, UNIT)  # the same order still settles once the charge fits
    assert balance(c, user) == 0


def test_settle_needs_the_operator_both_sides_and_a_registered_token(c: Chain) -> None:
    user = c.users[0]
    deposit(c, user, 100 * USDC)
    for sender in (c.owner, user):
        with pytest.raises(REVERTS, match="not operator"):
            settle(c, user, USDC, UNIT, sender=sender)
    with pytest.raises(Skipped, match="zero units or spent"):
        settle(c, user, 0, UNIT)
    with pytest.raises(Skipped, match="zero units or spent"):
        settle(c, user, USDC, 0)
    with pytest.raises(Skipped, match="fees exceed spent"):
        settle(c, user, USDC, UNIT, fees=USDC + 1)
    usdc = replace(order(c, user, "x"), token=c.usdc.address)
    assert skipped(c, settle_batch(c, fill(c, usdc, USDC, UNIT))) == ["unknown index token"]
    # a token that claims the vault as its minter, but that the vault did not create
    rogue = deploy_contract(c.w3, "IndexToken", c.owner, "Rogue", "RG", c.vault.address)
    assert rogue.functions.minter().call() == c.vault.address
    o = replace(order(c, user, "r"), token=rogue.address)
    assert skipped(c, settle_batch(c, fill(c, o, 100 * USDC, UNIT))) == ["unknown index token"]
    assert rogue.functions.totalSupply().call() == 0
    assert balance(c, user) == 100 * USDC


def test_order_key_binds_chain_and_vault(c: Chain) -> None:
    uid = b"deployment-a/order-17"
    on_chain = c.vault.functions.order_key(uid).call()
    assert on_chain == order_key(c.w3.eth.chain_id, c.vault.address, uid)
    assert on_chain != order_key(c.w3.eth.chain_id + 1, c.vault.address, uid)
    assert on_chain != order_key(c.w3.eth.chain_id, c.usdc.address, uid)
    assert on_chain != c.vault.functions.order_key(b"deployment-b/order-17").call()


# --- exit -------------------------------------------------------------------------------------

def release(c: Chain, user: str, amount: int, sender: str | None = None) -> Any:
    tx = c.vault.functions.release(user, amount).transact({"from": sender or c.operator})
    return c.w3.eth.wait_for_transaction_receipt(tx)


def test_withdrawal_after_the_delay_pays_what_is_left(c: Chain) -> None:
    user = c.users[0]
    deposit(c, user, 500 * USDC)
    ready_at = request(c, user, 300 * USDC)
    assert ready_at >= c.now() + DELAY - 1
    with pytest.raises(REVERTS, match="too early"):
        c.vault.functions.withdraw().transact({"from": user})
    settle(c, user, 350 * USDC, UNIT)  # settled while the request waits: 150 left
    c.travel(ready_at)
    before = c.usdc.functions.balanceOf(user).call()
    receipt = c.w3.eth.wait_for_transaction_receipt(
        c.vault.functions.withdraw().transact({"from": user}))
    (event,) = logs(c.vault, "Withdrawn", receipt)
    assert event["args"]["amount"] == 150 * USDC and not event["args"]["released"]
    assert c.usdc.functions.balanceOf(user).call() == before + 150 * USDC
    assert balance(c, user) == 0
    with pytest.raises(REVERTS, match="no request"):  # a request pays once
        c.vault.functions.withdraw().transact({"from": user})


def test_operator_releases_early_only_to_the_user(c: Chain) -> None:
    user = c.users[0]
    deposit(c, user, 500 * USDC)
    with pytest.raises(REVERTS, match="no request"):
        release(c, user, 200 * USDC)
    request(c, user, 200 * USDC)
    with pytest.raises(REVERTS, match="not operator"):
        release(c, user, 200 * USDC, sender=c.users[1])
    before = c.usdc.functions.balanceOf(user).call()
    (event,) = logs(c.vault, "Withdrawn", release(c, user, 200 * USDC))
    assert event["args"]["released"] and event["args"]["amount"] == 200 * USDC
    assert c.usdc.functions.balanceOf(user).call() == before + 200 * USDC
    assert balance(c, user) == 300 * USDC


def test_a_release_pays_at_most_what_the_solver_set_aside_and_the_rest_waits(c: Chain) -> None:
    """The user raises "500" to "1,500" while the solver's release of 500 is on its way: the
    release pays 500, and the other 1,000 waits for its own delay (before, the release paid
    1,500 at once, and the settlement of an order already bought then reverted)."""
    user = c.users[0]
    deposit(c, user, 2000 * USDC)
    request(c, user, 500 * USDC)
    ready_at = request(c, user, 1500 * USDC)
    (event,) = logs(c.vault, "Withdrawn", release(c, user, 500 * USDC))
    assert event["args"]["amount"] == 500 * USDC
    assert c.vault.functions.withdrawal_requested(user).call() == 1000 * USDC
    assert c.vault.functions.withdrawal_ready_at(user).call() == ready_at
    with pytest.raises(REVERTS, match="too early"):
        c.vault.functions.withdraw().transact({"from": user})
    c.travel(ready_at)
    c.vault.functions.withdraw().transact({"from": user})
    assert balance(c, user) == 500 * USDC


def test_after_the_grace_no_settlement_spends_what_a_request_asks_for(c: Chain) -> None:
    """Before, the operator key could settle a user's whole balance for 1 wei of a token right
    after her request, and withdraw() then paid nothing."""
    user = c.users[0]
    deposit(c, user, 500 * USDC)
    ready_at = request(c, user, 300 * USDC)
    settle(c, user, 50 * USDC, UNIT, uid="within-the-grace")  # bought before the request
    c.travel(ready_at - DELAY + GRACE)
    with pytest.raises(Skipped, match="locked for withdrawal"):
        settle(c, user, 200 * USDC, 1, uid="drain")
    settle(c, user, 150 * USDC, UNIT, uid="what-is-not-asked-for")
    c.travel(ready_at)
    c.vault.functions.withdraw().transact({"from": user})
    assert balance(c, user) == 0 and c.usdc.functions.balanceOf(c.vault.address).call() == 0


def test_a_request_asks_for_at_most_the_balance_and_an_empty_wallet_cannot_ask(c: Chain) -> None:
    user, empty = c.users[0], c.users[1]
    deposit(c, user, 500 * USDC)
    request(c, user, 2**256 - 1)  # "everything"
    assert c.vault.functions.withdrawal_requested(user).call() == 500 * USDC
    with pytest.raises(REVERTS, match="nothing to withdraw"):
        c.vault.functions.request_withdrawal(USDC).transact({"from": empty})


@pytest.mark.parametrize("delay, grace, change_delay, refused", [
    (3599, 0, 3600, "delay not within an hour and 30 days"),
    (30 * 86400 + 1, 0, 60 * 86400, "delay not within an hour and 30 days"),
    (2**256 - 1, 0, 2**256 - 1, "delay not within an hour and 30 days"),  # requests would revert
    (3600, 3600, 7200, "grace not below delay"),
    (7200, 600, 7199, "change delay not within the withdrawal delay and 60 days"),
    (3600, 600, 60 * 86400 + 1, "change delay not within the withdrawal delay and 60 days"),
])
def test_the_delays_are_bounded_and_the_grace_shorter(delay: int, grace: int, change_delay: int,
                                                      refused: str) -> None:
    w3 = Web3(EthereumTesterProvider())
    owner, operator, treasury = w3.eth.accounts[:3]
    usdc = deploy_contract(w3, "MockUSDC", owner)
    with pytest.raises(REVERTS, match=refused):
        deploy_vault(w3, owner, usdc.address, treasury, operator, delay, grace, change_delay)
    deploy_vault(w3, owner, usdc.address, treasury, operator, 30 * 86400, 3600, 60 * 86400)


def test_the_vault_creates_its_tokens_from_a_real_blueprint() -> None:
    w3 = Web3(EthereumTesterProvider())
    owner, operator, treasury = w3.eth.accounts[:3]
    usdc = deploy_contract(w3, "MockUSDC", owner).address
    with pytest.raises(REVERTS, match="no token blueprint"):
        deploy_vault(w3, owner, usdc, treasury, operator, blueprint=treasury)
    with pytest.raises(REVERTS, match="names and symbols differ in number"):
        deploy_contract(w3, "CollateralVault", owner, usdc, treasury, operator, DELAY, GRACE,
                        CHANGE_DELAY, deploy_blueprint(w3, owner), ["A", "B"], ["A"])
    vault = deploy_vault(w3, owner, usdc, treasury, operator,
                         tokens=(("Top 10 Index", "TOP10"), ("Layer 1", "L1")))
    for symbol, name in (("TOP10", "Top 10 Index"), ("L1", "Layer 1")):
        token = index_token(w3, vault, symbol)
        assert token.functions.name().call() == name
        assert token.functions.minter().call() == vault.address
        assert vault.functions.index_tokens(token.address).call()


# --- administration: every change announced, a delay before it --------------------------------

def announce(c: Chain, call: Any) -> int:
    """Send the owner's announcement; when it may be applied."""
    receipt = c.w3.eth.wait_for_transaction_receipt(call.transact({"from": c.owner}))
    (event,) = [e for name in ("OperatorAnnounced", "TreasuryAnnounced", "IndexTokenAnnounced")
                for e in logs(c.vault, name, receipt)]
    assert event["args"]["effective_at"] == c.now() + CHANGE_DELAY
    return int(event["args"]["effective_at"])


def test_the_owner_cannot_take_what_the_operator_cannot(c: Chain) -> None:
    """The attack the timelock stops: the owner makes itself operator and treasury and settles
    every balance to itself. Announced, it gives each user a full withdrawal delay to leave,
    and after the grace no settlement touches what a request asks for."""
    alice, bob = c.users[:2]
    deposit(c, alice, 12_000 * USDC)
    deposit(c, bob, 500 * USDC)
    for call in (c.vault.functions.announce_operator(c.owner),
                 c.vault.functions.announce_treasury(c.owner)):
        effective_at = announce(c, call)
    for call in (c.vault.functions.apply_operator(), c.vault.functions.apply_treasury()):
        with pytest.raises(REVERTS, match="announced change not due"):
            call.transact({"from": c.owner})
    ready_at = request(c, alice, 2**256 - 1)  # alice reads the announcement and leaves
    assert ready_at <= effective_at
    c.travel(effective_at)
    for sender in (c.operator, c.users[2]):
        with pytest.raises(REVERTS, match="not owner"):
            c.vault.functions.apply_operator().transact({"from": sender})
    c.vault.functions.apply_operator().transact({"from": c.owner})
    c.vault.functions.apply_treasury().transact({"from": c.owner})
    assert c.vault.functions.operator().call() == c.owner
    with pytest.raises(Skipped, match="locked for withdrawal"):
        settle(c, alice, USDC, 1, uid="drain-alice", sender=c.owner)
    c.vault.functions.withdraw().transact({"from": alice})
    assert c.usdc.functions.balanceOf(alice).call() == 1_000_000 * USDC
    # bob stayed: he accepted the new operator, announced a delay ahead
    settle(c, bob, 500 * USDC, 1, uid="bob", sender=c.owner)
    with pytest.raises(REVERTS, match="not operator"):
        settle(c, bob, USDC, 1, uid="old", sender=c.operator)


def test_an_announcement_replaced_restarts_its_clock(c: Chain) -> None:
    announce(c, c.vault.functions.announce_operator(c.users[0]))
    c.travel(c.now() + CHANGE_DELAY - 100)
    effective_at = announce(c, c.vault.functions.announce_operator(c.users[1]))
    with pytest.raises(REVERTS, match="announced change not due"):
        c.vault.functions.apply_operator().transact({"from": c.owner})
    c.travel(effective_at)
    c.vault.functions.apply_operator().transact({"from": c.owner})
    assert c.vault.functions.operator().call() == c.users[1]
    with pytest.raises(REVERTS, match="nothing announced"):
        c.vault.functions.apply_operator().transact({"from": c.owner})
    with pytest.raises(REVERTS, match="zero treasury"):
        c.vault.functions.announce_treasury(ZERO).transact({"from": c.owner})
    with pytest.raises(REVERTS, match="not owner"):
        c.vault.functions.announce_operator(c.users[0]).transact({"from": c.operator})


def test_a_new_index_token_is_announced_then_created_by_the_vault(c: Chain) -> None:
    effective_at = announce(c, c.vault.functions.announce_index_token("Layer 1", "L1"))
    with pytest.raises(REVERTS, match="announced change not due"):
        c.vault.functions.apply_index_token().transact({"from": c.owner})
    c.travel(effective_at)
    receipt = c.w3.eth.wait_for_transaction_receipt(
        c.vault.functions.apply_index_token().transact({"from": c.owner}))
    token = index_token(c.w3, c.vault, "L1", receipt)
    assert token.functions.minter().call() == c.vault.address
    assert token.functions.symbol().call() == "L1"
    deposit(c, c.users[0], 10 * USDC)
    o = replace(order(c, c.users[0], "l1"), token=token.address)
    assert skipped(c, settle_batch(c, fill(c, o, USDC, UNIT))) == []
    assert token.functions.balanceOf(c.users[0]).call() == UNIT


def test_ownership_moves_in_two_steps(c: Chain) -> None:
    new_owner = c.users[2]
    with pytest.raises(REVERTS, match="not owner"):
        c.vault.functions.transfer_ownership(new_owner).transact({"from": new_owner})
    c.vault.functions.transfer_ownership(new_owner).transact({"from": c.owner})
    assert c.vault.functions.owner().call() == c.owner  # a typo would not lose the vault
    with pytest.raises(REVERTS, match="not pending owner"):
        c.vault.functions.accept_ownership().transact({"from": c.users[0]})
    receipt = c.w3.eth.wait_for_transaction_receipt(
        c.vault.functions.accept_ownership().transact({"from": new_owner}))
    (event,) = logs(c.vault, "OwnershipTransferred", receipt)
    assert (event["args"]["owner"], event["args"]["new_owner"]) == (c.owner, new_owner)
    assert c.vault.functions.owner().call() == new_owner
    with pytest.raises(REVERTS, match="not owner"):
        c.vault.functions.announce_operator(c.owner).transact({"from": c.owner})


def test_pause_stops_deposits_and_settlements_never_withdrawals(c: Chain) -> None:
    user = c.users[0]
    deposit(c, user, 500 * USDC)
    ready_at = request(c, user, 100 * USDC)
    with pytest.raises(REVERTS, match="not owner or operator"):
        c.vault.functions.pause().transact({"from": user})
    c.vault.functions.pause().transact({"from": c.operator})
    with pytest.raises(REVERTS, match="paused"):
        c.vault.functions.deposit(USDC, 0).transact({"from": user})
    with pytest.raises(REVERTS, match="paused"):
        settle(c, user, USDC, UNIT)
    with pytest.raises(REVERTS, match="not owner"):
        c.vault.functions.unpause().transact({"from": c.operator})
    c.travel(ready_at)
    c.vault.functions.withdraw().transact({"from": user})
    request(c, user, 100 * USDC)
    release(c, user, 100 * USDC)
    assert balance(c, user) == 300 * USDC
    c.vault.functions.unpause().transact({"from": c.owner})
    deposit(c, user, USDC)
    assert balance(c, user) == 301 * USDC


# --- stateful property test -----------------------------------------------------------------------

class VaultMachine(RuleBasedStateMachine):
    """Random deposits, settlements, withdrawal requests, releases, withdrawals, pauses and time
    jumps against a model of what the vault owes. Each example starts from the deployment's
    snapshot, so no example redeploys."""

    def __init__(self) -> None:
        super().__init__()
        self.c = shared_chain()
        self.c.tester().revert_to_snapshot(self.c.base)
        self.deposited = 0
        self.withdrawn = 0
        self.units = 0
        self.deposits = 0
        self.balances = [0] * len(self.c.users)
        self.settled: dict[tuple[int, int], int] = {}  # (user, order) -> what it charged
        self.requests: dict[int, list[int]] = {}  # user -> [asked, ready_at, locked_at]
        self.paused = False

    users = st.integers(0, 2)  # three users: accounts 3 to 5

    @rule(u=users, amount=st.integers(1, 1000 * USDC), ref=st.integers(0, 2**64))
    def deposit(self, u: int, amount: int, ref: int) -> None:
        user = self.c.users[u]
        if self.paused:
            with pytest.raises(REVERTS, match="paused"):
                deposit(self.c, user, amount, ref)
            return
        (event,) = logs(self.c.vault, "Deposited", deposit(self.c, user, amount, ref))
        assert event["args"]["deposit_id"] == self.deposits  # gap-free
        self.deposits += 1
        self.deposited += amount
        self.balances[u] += amount
        assert event["args"]["balance"] == self.balances[u]

    @rule(u=users, order=st.integers(0, 7), spent=st.integers(1, 1200 * USDC),
          units=st.integers(1, 10 * UNIT))
    def settle(self, u: int, order: int, spent: int, units: int) -> None:
        user = self.c.users[u]
        request = self.requests.get(u)
        if request and abs(self.c.now() - request[2]) <= 2:  # not on the edge of the grace
            self.c.travel(request[2] + 3)
        locked = request is not None and self.c.now() >= request[2] \
            and self.balances[u] - spent < request[0]
        if self.paused:  # the whole call is refused
            with pytest.raises(REVERTS, match="paused"):
                settle(self.c, user, spent, units, uid=f"o{order}")
            return
        reason = ("already settled" if (u, order) in self.settled
                  else "insufficient balance" if spent > self.balances[u]
                  else "locked for withdrawal" if locked else None)
        if reason:
            with pytest.raises(Skipped, match=reason):
                settle(self.c, user, spent, units, uid=f"o{order}")
            return
        settle(self.c, user, spent, units, uid=f"o{order}")
        self.settled[u, order] = spent
        self.balances[u] -= spent
        self.units += units

    @rule(u=users, amount=st.one_of(st.integers(1, 1200 * USDC), st.just(2**256 - 1)))
    def request_withdrawal(self, u: int, amount: int) -> None:
        if not self.balances[u]:
            with pytest.raises(REVERTS, match="nothing to withdraw"):
                self.c.vault.functions.request_withdrawal(amount).transact(
                    {"from": self.c.users[u]})
            return
        ready_at = request(self.c, self.c.users[u], amount)
        self.requests[u] = [min(amount, self.balances[u]), ready_at, ready_at - DELAY + GRACE]

    def pay(self, u: int, receipt: Any, released: bool, most: int = 2**256 - 1) -> None:
        asked = self.requests[u][0]
        (event,) = logs(self.c.vault, "Withdrawn", receipt)
        paid = min(asked, self.balances[u], most)
        assert (event["args"]["amount"], event["args"]["released"]) == (paid, released)
        if paid in (asked, self.balances[u]):
            del self.requests[u]
        else:  # the rest waits on its own clock
            self.requests[u][0] -= paid
        self.balances[u] -= paid
        self.withdrawn += paid

    @rule(u=users)
    def withdraw_after_the_delay(self, u: int) -> None:
        """Whatever happened (pause included), a request pays once its delay has passed."""
        user = self.c.users[u]
        if u not in self.requests:
            with pytest.raises(REVERTS, match="no request"):
                self.c.vault.functions.withdraw().transact({"from": user})
            return
        self.c.travel(self.requests[u][1])
        tx = self.c.vault.functions.withdraw().transact({"from": user})
        self.pay(u, self.c.w3.eth.wait_for_transaction_receipt(tx), released=False)

    @precondition(lambda self: self.requests)
    @rule(data=st.data())
    def withdraw_too_early(self, data: st.DataObject) -> None:
        u = data.draw(st.sampled_from(sorted(self.requests)))
        if self.requests[u][1] - self.c.now() > 60:
            with pytest.raises(REVERTS, match="too early"):
                self.c.vault.functions.withdraw().transact({"from": self.c.users[u]})

    @rule(u=users, most=st.integers(1, 1200 * USDC))
    def release(self, u: int, most: int) -> None:
        user = self.c.users[u]
        if u not in self.requests:
            with pytest.raises(REVERTS, match="no request"):
                release(self.c, user, most)
            return
        self.pay(u, release(self.c, user, most), released=True, most=most)

    @invariant()
    def requests_are_as_the_model_says(self) -> None:
        for u, user in enumerate(self.c.users):
            asked = self.requests.get(u, [0])[0]
            assert self.c.vault.functions.withdrawal_requested(user).call() == asked

    @rule()
    def toggle_pause(self) -> None:
        if self.paused:
            self.c.vault.functions.unpause().transact({"from": self.c.owner})
        else:
            self.c.vault.functions.pause().transact({"from": self.c.operator})
        self.paused = not self.paused

    @rule(seconds=st.integers(1, 2 * DELAY))
    def time_jump(self, seconds: int) -> None:
        self.c.travel(self.c.now() + seconds)

    @invariant()
    def collateral_is_conserved(self) -> None:
        f = self.c.vault.functions
        on_chain = [f.balances(user).call() for user in self.c.users]
        assert on_chain == self.balances
        treasury = self.c.usdc.functions.balanceOf(self.c.treasury).call()
        assert sum(on_chain) + treasury + self.withdrawn == self.deposited
        held = self.c.usdc.functions.balanceOf(self.c.vault.address).call()
        assert f.total_balances().call() == sum(on_chain) == held

    @invariant()
    def supply_is_units_settled_and_orders_settle_once(self) -> None:
        assert self.c.token.functions.totalSupply().call() == self.units
        for u, user in enumerate(self.c.users):
            for n in range(8):
                filled, block, _ = order_state(self.c, user, f"o{n}")
                assert filled == self.settled.get((u, n), 0)
                assert (block != 0) == ((u, n) in self.settled)


VaultMachine.TestCase.settings = settings(max_examples=8, stateful_step_count=15, deadline=None)
test_vault_state_machine = VaultMachine.TestCase
