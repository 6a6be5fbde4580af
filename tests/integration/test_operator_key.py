"""What a stolen operator key can do to users' money, on the embedded chain and on anvil: fill
each open order its user signed, at its limit with its fee, and nothing more. It cannot charge
an amount nobody signed, settle after the deadline or the cancellation, exceed the signed
collateral across partial fills, touch what a withdrawal locked, or pay anyone but the user.
The trust table in ``docs/chain.md`` names these tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from eth_account import Account
from web3 import HTTPProvider, Web3

from chain.local_node import anvil_process
from solver.signed_orders import sign
from tests.support.chains import ANVIL_KEYS, BACKENDS
from tests.support.contracts import (
    GRACE,
    HOUR,
    UNIT,
    USDC,
    Chain,
    balance,
    deploy,
    deposit,
    domain,
    fill,
    filled,
    logs,
    order,
    request,
    settle_batch,
    shared_chain,
    skipped,
    user_key,
)

OPERATOR_CALLS = {"settle_batch", "release", "pause"}
"""Every function the operator may call that changes state."""


@pytest.fixture(scope="module", params=BACKENDS)
def node(request: pytest.FixtureRequest) -> Iterator[Web3 | None]:
    """anvil, started once for the module; None for the embedded chain."""
    if request.param == "embedded":
        yield None
        return
    with anvil_process() as url:
        yield Web3(HTTPProvider(url))


@pytest.fixture
def c(node: Web3 | None) -> Chain:
    """The contracts as deployed, funded and approved: fresh ones on anvil, the shared
    embedded chain rolled back to its base state."""
    if node is not None:
        return deploy(node, ANVIL_KEYS)
    chain = shared_chain()
    chain.tester().revert_to_snapshot(chain.base)
    return chain


def test_the_operator_fills_a_signed_order_at_its_limit_with_its_fee_and_no_more(
        c: Chain) -> None:
    """Alice signs 1,000 USDC at 100 a unit, fees at most 50 bps: the most the operator can
    take is those 1,000 for 10 units, 5 of it fees."""
    alice = c.users[0]
    deposit(c, alice, 5_000 * USDC)
    o = order(c, alice)
    dearer = fill(c, o, 100 * USDC + 1, UNIT)
    greedier = fill(c, o, 100 * USDC, UNIT, fees=USDC // 2 + 1)
    assert skipped(c, settle_batch(c, dearer, greedier)) == [
        "price above signed limit", "fees above signed bound"]
    receipt = settle_batch(c, fill(c, o, 1_000 * USDC, 10 * UNIT, fees=5 * USDC))
    [settled] = logs(c.vault, "OrderSettled", receipt)
    assert (settled["args"]["collateral_spent"], settled["args"]["units"]) == (
        1_000 * USDC, 10 * UNIT)
    more = fill(c, o, USDC, UNIT // 100, before=1_000 * USDC)
    assert skipped(c, settle_batch(c, more)) == ["above signed collateral"]
    assert balance(c, alice) == 4_000 * USDC
    assert c.token.functions.balanceOf(alice).call() == 10 * UNIT


def test_the_operator_cannot_charge_an_amount_nobody_signed(c: Chain) -> None:
    """A signature by any key but the user's is refused, and so is a signed order with any
    field changed; no other call the operator may make moves a balance to the treasury."""
    alice = c.users[0]
    deposit(c, alice, 5_000 * USDC)
    o = order(c, alice)
    forged = fill(c, o, 100 * USDC, UNIT, signature=sign(o, domain(c), Account.create().key))
    signed = sign(o, domain(c), user_key(c, alice))
    raised = replace(o, max_collateral=5_000 * USDC)
    altered = fill(c, raised, 5_000 * USDC, 50 * UNIT, signature=signed)
    assert skipped(c, settle_batch(c, forged, altered)) == ["bad signature"] * 2
    assert balance(c, alice) == 5_000 * USDC
    changing = {f["name"] for f in c.vault.abi
                if f["type"] == "function" and f["stateMutability"] not in ("view", "pure")}
    user_and_owner = {"deposit", "request_withdrawal", "withdraw", "cancel_order", "unpause",
                      "announce_operator", "apply_operator", "announce_treasury",
                      "apply_treasury", "announce_index_token", "apply_index_token",
                      "transfer_ownership", "accept_ownership"}
    assert changing - user_and_owner == OPERATOR_CALLS


def test_the_operator_cannot_settle_after_the_deadline_or_the_cancellation(c: Chain) -> None:
    alice, bob = c.users[:2]
    deposit(c, alice, 1_000 * USDC)
    deposit(c, bob, 1_000 * USDC)
    soon = order(c, alice, "soon", deadline=c.now() + HOUR)
    kept = order(c, bob, "kept", deadline=c.now() + 10 * HOUR)
    c.vault.functions.cancel_order("kept").transact({"from": bob})
    c.travel(c.now() + HOUR + GRACE)
    assert skipped(c, settle_batch(c, fill(c, soon, 100 * USDC, UNIT),
                                   fill(c, kept, 100 * USDC, UNIT))) == ["expired", "cancelled"]
    assert (balance(c, alice), balance(c, bob)) == (1_000 * USDC, 1_000 * USDC)


def test_the_operator_cannot_exceed_the_signed_collateral_across_partial_fills(
        c: Chain) -> None:
    alice = c.users[0]
    deposit(c, alice, 5_000 * USDC)
    o = order(c, alice)
    first = fill(c, o, 400 * USDC, 4 * UNIT)
    second = fill(c, o, 400 * USDC, 4 * UNIT, before=400 * USDC)
    assert skipped(c, settle_batch(c, first, second, first)) == ["already settled"]
    third = fill(c, o, 300 * USDC, 3 * UNIT, before=800 * USDC)
    assert skipped(c, settle_batch(c, third)) == ["above signed collateral"]
    assert filled(c, o) == 800 * USDC and balance(c, alice) == 4_200 * USDC


def test_the_operator_cannot_touch_what_a_withdrawal_locked_or_pay_anyone_else(
        c: Chain) -> None:
    alice = c.users[0]
    deposit(c, alice, 1_000 * USDC)
    request(c, alice, 900 * USDC)
    c.travel(c.now() + GRACE + 1)
    o = order(c, alice)
    assert skipped(c, settle_batch(c, fill(c, o, 200 * USDC, 2 * UNIT))) == [
        "locked for withdrawal"]
    before = c.usdc.functions.balanceOf(alice).call()
    c.vault.functions.release(alice, 900 * USDC).transact({"from": c.operator})
    assert c.usdc.functions.balanceOf(alice).call() == before + 900 * USDC  # to her only
    assert balance(c, alice) == 100 * USDC
