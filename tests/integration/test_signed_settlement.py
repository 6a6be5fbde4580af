"""Signed orders on the embedded chain: the vault settles, many to a transaction, only what each
user signed (EIP-712), and skips a fill that does not hold with a reason while the others
settle; a user cancels on-chain, effective after the grace."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from eth_account import Account

from solver.signed_orders import Domain, SignedOrder, sign, signer
from tests.support.contracts import (
    GRACE,
    HOUR,
    REVERTS,
    UNIT,
    USDC,
    Chain,
    balance,
    deposit,
    domain,
    fill,
    filled,
    logs,
    order,
    request,
    settle_batch,
    skipped,
    user_key,
)


def test_the_vault_and_the_python_side_agree_on_what_is_signed(c: Chain) -> None:
    alice = c.users[0]
    o = order(c, alice)
    digest = c.vault.functions.order_digest(o.as_call()).call()
    signature = sign(o, domain(c), user_key(c, alice))
    assert Account._recover_hash(digest, signature=signature) == alice
    assert signer(o, domain(c), signature) == alice
    elsewhere = Domain(c.w3.eth.chain_id + 1, c.vault.address)
    assert signer(o, elsewhere, signature) != alice


def test_a_batch_settles_each_signed_fill_with_one_transfer_to_the_treasury(c: Chain) -> None:
    alice, bob = c.users[:2]
    deposit(c, alice, 1_000 * USDC)
    deposit(c, bob, 500 * USDC)
    treasury_before = c.usdc.functions.balanceOf(c.treasury).call()
    a, b = order(c, alice), order(c, bob, most=500 * USDC)
    receipt = settle_batch(c, fill(c, a, 400 * USDC, 4 * UNIT, fees=2 * USDC),
                           fill(c, b, 300 * USDC, 3 * UNIT))
    assert skipped(c, receipt) == []
    settled = logs(c.vault, "OrderSettled", receipt)
    assert [(e["args"]["user"], e["args"]["units"]) for e in settled] == [
        (alice, 4 * UNIT), (bob, 3 * UNIT)]
    transfers = logs(c.usdc, "Transfer", receipt)
    assert [t["args"]["value"] for t in transfers] == [700 * USDC]
    assert c.usdc.functions.balanceOf(c.treasury).call() - treasury_before == 700 * USDC
    assert (balance(c, alice), balance(c, bob)) == (600 * USDC, 200 * USDC)
    assert c.token.functions.balanceOf(alice).call() == 4 * UNIT
    assert c.vault.functions.total_balances().call() == 800 * USDC
    assert filled(c, a) == 400 * USDC


def test_partial_fills_settle_in_order_within_the_signed_collateral(c: Chain) -> None:
    alice = c.users[0]
    deposit(c, alice, 5_000 * USDC)
    o = order(c, alice, most=1_000 * USDC)
    first = fill(c, o, 600 * USDC, 6 * UNIT)
    assert skipped(c, settle_batch(c, first)) == []
    assert skipped(c, settle_batch(c, first)) == ["already settled"]  # replayed: once
    too_much = fill(c, o, 401 * USDC, 5 * UNIT, before=600 * USDC)
    assert skipped(c, settle_batch(c, too_much)) == ["above signed collateral"]
    rest = fill(c, o, 400 * USDC, 4 * UNIT, before=600 * USDC)
    assert skipped(c, settle_batch(c, rest)) == []
    assert filled(c, o) == 1_000 * USDC
    assert balance(c, alice) == 4_000 * USDC


Refusal = Callable[[Chain, SignedOrder], tuple[SignedOrder, tuple[Any, ...]]]


def _signed_by_another(c: Chain, o: SignedOrder) -> tuple[SignedOrder, tuple[Any, ...]]:
    return o, fill(c, o, 100 * USDC, UNIT, signature=sign(o, domain(c), user_key(c, c.users[1])))


def _for_another_vault(c: Chain, o: SignedOrder) -> tuple[SignedOrder, tuple[Any, ...]]:
    elsewhere = Domain(c.w3.eth.chain_id, c.usdc.address)
    return o, fill(c, o, 100 * USDC, UNIT, signature=sign(o, elsewhere, user_key(c, o.user)))


def _high_s(c: Chain, o: SignedOrder) -> tuple[SignedOrder, tuple[Any, ...]]:
    """The same signature in its other form (s' = n - s, v flipped): valid for ecrecover,
    refused by the vault (EIP-2), so a signature has one form."""
    sig = sign(o, domain(c), user_key(c, o.user))
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    s = n - int.from_bytes(sig[32:64], "big")
    other = sig[:32] + s.to_bytes(32, "big") + bytes([55 - sig[64]])
    return o, fill(c, o, 100 * USDC, UNIT, signature=other)


def _truncated(c: Chain, o: SignedOrder) -> tuple[SignedOrder, tuple[Any, ...]]:
    return o, fill(c, o, 100 * USDC, UNIT, signature=sign(o, domain(c), user_key(c, o.user))[:64])


def _changed_after_signing(c: Chain, o: SignedOrder) -> tuple[SignedOrder, tuple[Any, ...]]:
    signature = sign(o, domain(c), user_key(c, o.user))
    raised = replace(o, max_collateral=o.max_collateral * 10)
    return raised, fill(c, raised, 100 * USDC, UNIT, signature=signature)


def _expired(c: Chain, o: SignedOrder) -> tuple[SignedOrder, tuple[Any, ...]]:
    past = replace(o, deadline=c.now() - 1)
    return past, fill(c, past, 100 * USDC, UNIT)


def _above_the_limit(c: Chain, o: SignedOrder) -> tuple[SignedOrder, tuple[Any, ...]]:
    return o, fill(c, o, 100 * USDC + 1, UNIT)  # 100 USDC per unit signed


def _fees_above_the_bound(c: Chain, o: SignedOrder) -> tuple[SignedOrder, tuple[Any, ...]]:
    return o, fill(c, o, 100 * USDC, UNIT, fees=USDC // 2 + 1)  # 50 bps of 100 USDC


def _zero_units(c: Chain, o: SignedOrder) -> tuple[SignedOrder, tuple[Any, ...]]:
    return o, fill(c, o, 100 * USDC, 0)


def _fees_beyond_spent(c: Chain, o: SignedOrder) -> tuple[SignedOrder, tuple[Any, ...]]:
    generous = replace(o, max_fee_bps=20_000)
    return generous, fill(c, generous, 100 * USDC, UNIT, fees=100 * USDC + 1)


def _unknown_token(c: Chain, o: SignedOrder) -> tuple[SignedOrder, tuple[Any, ...]]:
    other = replace(o, token=c.usdc.address)
    return other, fill(c, other, 100 * USDC, UNIT)


def _absurd_limit(c: Chain, o: SignedOrder) -> tuple[SignedOrder, tuple[Any, ...]]:
    """A limit near 2**256 would overflow the price check and revert the whole batch."""
    absurd = replace(o, limit_price=2**256 - 1)
    return absurd, fill(c, absurd, 100 * USDC, 2**255)


def _beyond_the_balance(c: Chain, o: SignedOrder) -> tuple[SignedOrder, tuple[Any, ...]]:
    rich = replace(o, max_collateral=10**9 * USDC, limit_price=10**9 * USDC)
    return rich, fill(c, rich, 2_000 * USDC + 1, UNIT)


REFUSALS: dict[str, Refusal] = {
    "bad signature": _signed_by_another,
    "bad signature ": _for_another_vault,
    "bad signature  ": _high_s,
    "bad signature   ": _truncated,
    "bad signature    ": _changed_after_signing,
    "expired": _expired,
    "price above signed limit": _above_the_limit,
    "fees above signed bound": _fees_above_the_bound,
    "zero units or spent": _zero_units,
    "fees exceed spent": _fees_beyond_spent,
    "unknown index token": _unknown_token,
    "amount out of range": _absurd_limit,
    "insufficient balance": _beyond_the_balance,
}


@pytest.mark.parametrize("reason", REFUSALS, ids=[f.__name__.strip("_") for f in REFUSALS.values()])
def test_a_fill_that_does_not_hold_is_skipped_and_the_others_settle(c: Chain, reason: str) -> None:
    alice, bob = c.users[:2]
    deposit(c, alice, 2_000 * USDC)
    deposit(c, bob, 2_000 * USDC)
    bad_order, bad = REFUSALS[reason](c, order(c, alice))
    good = fill(c, order(c, bob), 100 * USDC, UNIT)
    receipt = settle_batch(c, bad, good)
    assert skipped(c, receipt) == [reason.strip()]
    assert [e["args"]["user"] for e in logs(c.vault, "OrderSettled", receipt)] == [bob]
    assert balance(c, alice) == 2_000 * USDC and c.token.functions.balanceOf(alice).call() == 0
    assert filled(c, bad_order) == 0
    assert balance(c, bob) == 1_900 * USDC


def test_no_fill_spends_what_a_withdrawal_locked(c: Chain) -> None:
    alice = c.users[0]
    deposit(c, alice, 1_000 * USDC)
    request(c, alice, 950 * USDC)
    o = order(c, alice)
    c.travel(c.now() + GRACE + 1)
    assert skipped(c, settle_batch(c, fill(c, o, 100 * USDC, UNIT))) == ["locked for withdrawal"]
    assert skipped(c, settle_batch(c, fill(c, o, 50 * USDC, UNIT // 2))) == []


def test_a_cancel_takes_effect_after_the_grace_and_is_never_postponed(c: Chain) -> None:
    alice = c.users[0]
    deposit(c, alice, 1_000 * USDC)
    o = order(c, alice, deadline=c.now() + 10 * HOUR)
    tx = c.vault.functions.cancel_order(o.cl_ord_id).transact({"from": alice})
    effective = logs(c.vault, "OrderCancelled", c.w3.eth.wait_for_transaction_receipt(tx))
    at = effective[0]["args"]["effective_at"]
    assert at == c.now() + GRACE
    # within the grace, what was already bought settles
    assert skipped(c, settle_batch(c, fill(c, o, 100 * USDC, UNIT))) == []
    c.travel(at - 60)
    c.vault.functions.cancel_order(o.cl_ord_id).transact({"from": alice})  # not postponed
    c.travel(at)
    assert skipped(c, settle_batch(c, fill(c, o, 100 * USDC, UNIT, before=100 * USDC))) == [
        "cancelled"]
    order_id = c.vault.functions.order_id(alice, o.cl_ord_id).call()
    assert c.vault.functions.order_state(order_id).call()[2] == at


def test_a_cancel_by_anyone_else_names_another_order(c: Chain) -> None:
    alice, mallory = c.users[:2]
    deposit(c, alice, 1_000 * USDC)
    o = order(c, alice)
    c.vault.functions.cancel_order(o.cl_ord_id).transact({"from": mallory})
    c.travel(c.now() + GRACE + 1)
    assert skipped(c, settle_batch(c, fill(c, o, 100 * USDC, UNIT))) == []


def test_only_the_operator_settles_and_never_while_paused(c: Chain) -> None:
    alice = c.users[0]
    deposit(c, alice, 1_000 * USDC)
    one = fill(c, order(c, alice), 100 * USDC, UNIT)
    with pytest.raises(REVERTS, match="not operator"):
        settle_batch(c, one, sender=alice)
    c.vault.functions.pause().transact({"from": c.operator})
    with pytest.raises(REVERTS, match="paused"):
        settle_batch(c, one)
    assert balance(c, alice) == 1_000 * USDC


def test_the_python_side_refuses_what_the_vault_refuses(c: Chain) -> None:
    """A signature in its second form, of another length or with another v recovers nobody
    here either, so the gateway refuses what the vault would skip."""
    alice = c.users[0]
    o = order(c, alice)
    signature = sign(o, domain(c), user_key(c, alice))
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    high_s = (signature[:32] + (n - int.from_bytes(signature[32:64], "big")).to_bytes(32, "big")
              + bytes([55 - signature[64]]))
    for bad in (high_s, signature[:64], signature + b"\0", signature[:64] + b"\x01", b""):
        assert signer(o, domain(c), bad) is None
