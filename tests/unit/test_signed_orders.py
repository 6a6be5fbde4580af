"""Orders the account's wallet signed: the engine keeps the terms, refuses what it could not
keep, never engages an order past its limit (the fee reserve included) or its deadline less
the settlement margin, allocates no fill the vault would refuse, and hands the terms to the
mint."""

from dataclasses import replace

import pytest

from solver.core import events as ev
from solver.core.allocation import EngagedOrder, allocate
from solver.core.commands import (
    BindWallet,
    CancelIndexOrder,
    ClockTicked,
    MintRefused,
    OrderCancelledOnChain,
    ReduceIndexOrder,
)
from solver.core.invariants import violations
from solver.core.inventory import PoolSlice
from solver.core.money import smallest_units
from solver.core.orders import MintStatus, OrderStatus, RejectReason
from solver.core.signed_terms import SignedTerms
from tests.support.builders import D, desk, index, params
from tests.unit.engine_steps import events_of, fill_all

WALLET = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
HOUR_S = 3600


def terms(**changes: object) -> SignedTerms:
    """Signed for at most 1,000 USDC at 1,010 a unit (SY2 costs 1,000 at the asks), fees at
    most 50 bps, until an hour from the start."""
    signed = SignedTerms(WALLET, "o1", D(1000), D(1010), 50, HOUR_S, "0x" + "11" * 65)
    return replace(signed, **changes)  # type: ignore[arg-type]


def signed_desk(**param_values: object):
    d = desk(solver_params=params(fee_reserve=D("0.002"), **param_values))
    d.apply(BindWallet, WALLET, "alice")
    d.deposit("alice", "5000")
    return d


def test_a_signed_order_is_accepted_minted_to_its_signer_and_expires_before_its_deadline():
    d = signed_desk(settle_margin_ms=120_000)
    d.order("alice", "o1", "1000", signed=terms())
    order = d.engine.orders[1]
    assert order.wallet == WALLET and order.signed == terms()
    assert order.expire_at == HOUR_S * 1000 - 120_000
    d.now = order.expire_at - 2  # the next input is a millisecond before
    d.apply(ClockTicked)
    assert order.status is OrderStatus.OPEN
    d.apply(ClockTicked)
    assert order.status is OrderStatus.EXPIRED


@pytest.mark.parametrize("changes, amount, reason, says", [
    ({"wallet": "0x" + "22" * 20}, "1000", RejectReason.SIGNED_TERMS, "not by this account's"),
    ({}, "1000.01", RejectReason.SIGNED_TERMS, "1000 signed"),
    ({"max_fee_bps": 19}, "1000", RejectReason.SIGNED_TERMS, "fee reserve of 20"),
    ({"deadline_s": 120}, "1000", RejectReason.ALREADY_EXPIRED, "less than 120 s"),
])
def test_terms_the_engine_could_not_keep_are_refused_and_change_nothing(changes, amount,
                                                                         reason, says):
    d = signed_desk(settle_margin_ms=120_000)
    before = d.engine.ledger.balances()
    [rejected] = events_of(d.order("alice", "o1", amount, signed=terms(**changes)))
    assert isinstance(rejected, ev.IndexOrderRejected)
    assert rejected.reason is reason and says in rejected.text
    assert d.engine.ledger.balances() == before and d.engine.orders == {}


def test_an_order_is_never_engaged_past_its_limit_with_the_fee_reserve():
    d = signed_desk()
    # 1,000 a unit at the asks; with the 0.2 % reserve 1,002: above a limit of 1,001
    d.order("alice", "o1", "1000", signed=terms(limit=D(1001)))
    d.order("alice", "o2", "1000", signed=terms(name="o2", limit=D(1003)))
    planned = d.plan()
    [started] = [e for e in events_of(planned) if isinstance(e, ev.BatchPlanned)]
    assert [e.order_id for e in started.engagements] == [2]


def test_the_mint_carries_what_was_signed():
    d = signed_desk()
    d.order("alice", "o1", "1000", signed=terms())
    requests = [e for e in events_of(d.plan()) if isinstance(e, ev.AssetOrderRequested)]
    fill_all(d, requests)
    canceled = d.apply(CancelIndexOrder, "alice", "o1", "c1")  # the rest: mint what it has
    [mint] = [e for e in events_of(canceled) if isinstance(e, ev.MintRequested)]
    assert mint.signed == terms() and mint.wallet == WALLET


def _pool(price: str, fee: str) -> dict[str, list[PoolSlice]]:
    return {"A1": [PoolSlice("lot-1", D(price), D("8"), D(fee))],
            "A2": [PoolSlice("lot-2", D("200"), D("1"), D(0))]}


@pytest.mark.parametrize("a1_price, a1_fee, allowed", [
    ("100", "0", True),          # 1,000 a unit, no fees
    ("101.25", "0", True),       # 1,010 a unit: at the limit
    ("101.26", "0", False),      # 1,010.08: above it
    ("100", "4", True),          # 4 of fees on 1,004: 39.8 bps
    ("100", "5.1", False),       # 5.1 on 1,005.1: 50.7 bps, above the 50 signed
])
def test_no_fill_is_allocated_that_the_vault_would_refuse(a1_price, a1_fee, allowed):
    order = EngagedOrder(1, index(), D(1), D(2000), None, terms())
    [allocated] = allocate([order], _pool(a1_price, a1_fee), 6).orders
    assert (allocated.units == D(1)) is allowed
    if allowed:
        assert terms().allows(allocated.units, allocated.cost, allocated.fees)
    else:
        assert (allocated.units, allocated.cost, allocated.fees) == (0, 0, 0)


def test_amounts_become_token_units_exactly_however_many_digits():
    """A 30-digit amount (24 whole digits, 6 decimals, the door's bound) keeps every digit:
    28 digits of precision would round it, and the message signed would differ."""
    assert smallest_units(D("123456789012345678901234.123456"), 6) == \
        123456789012345678901234123456
    assert smallest_units(D("1.0000001"), 6) is None
    assert smallest_units(D("1E+3"), 6) == 1_000_000_000


def test_a_cancel_on_chain_ends_the_open_order_once_and_releases_its_collateral():
    d = signed_desk()
    d.order("alice", "o1", "1000", signed=terms())
    cancelled = d.apply(OrderCancelledOnChain, "0xcafe:0", WALLET.lower(), "o1", HOUR_S)
    [completed] = [e for e in events_of(cancelled) if isinstance(e, ev.IndexOrderCompleted)]
    assert completed.order.status is OrderStatus.CANCELED
    assert completed.reason == "canceled on-chain by its wallet"
    assert d.engine.ledger.balance("alice", "USDC").available == D(5000)
    again = d.apply(OrderCancelledOnChain, "0xcafe:0", WALLET, "o1", HOUR_S)
    [ignored] = events_of(again)
    assert isinstance(ignored, ev.InputIgnored) and "is canceled" in ignored.reason


def test_a_cancel_on_chain_of_an_engaged_order_mints_what_its_batch_bought():
    d = signed_desk()
    d.order("alice", "o1", "1000", signed=terms())
    requests = [e for e in events_of(d.plan()) if isinstance(e, ev.AssetOrderRequested)]
    pending = d.apply(OrderCancelledOnChain, "0xcafe:0", WALLET, "o1", HOUR_S)
    assert [type(e) for e in events_of(pending)] == [ev.IndexOrderEndPending]
    settled = fill_all(d, requests)
    [mint] = [e for t in settled for e in events_of(t) if isinstance(e, ev.MintRequested)]
    assert mint.signed == terms() and d.engine.orders[1].status is OrderStatus.CANCELED


@pytest.mark.parametrize("wallet, name", [
    ("0x" + "22" * 20, "o1"),  # another wallet's order of that name: not alice's
    (WALLET, "o2"),            # alice's unsigned order: the vault never settles it anyway
    (WALLET, "r1"),            # o1's replace: the vault names an order by its signed name
])
def test_a_cancel_on_chain_of_another_order_changes_nothing(wallet, name):
    d = signed_desk()
    d.order("alice", "o1", "1000", signed=terms())
    d.order("alice", "o2", "1000")
    d.apply(ReduceIndexOrder, "alice", "o1", D(900), "r1")
    [ignored] = events_of(d.apply(OrderCancelledOnChain, "0xcafe:0", wallet, name, HOUR_S))
    assert isinstance(ignored, ev.InputIgnored)
    assert {o.status for o in d.engine.orders.values()} == {OrderStatus.OPEN}


def test_a_mint_the_vault_refuses_for_good_gives_the_units_back_and_the_collateral():
    d = signed_desk()
    d.order("alice", "o1", "1000", signed=terms())
    requests = [e for e in events_of(d.plan()) if isinstance(e, ev.AssetOrderRequested)]
    fill_all(d, requests)
    canceled = d.apply(CancelIndexOrder, "alice", "o1", "c1")
    [mint] = [e for e in events_of(canceled) if isinstance(e, ev.MintRequested)]
    free = {a: d.engine.inventory.free_quantity(a) for a in ("A1", "A2")}
    refused = d.apply(MintRefused, mint.order_id, 1,
                      "the vault refused the settlement: expired")
    [given_back, refunded] = events_of(refused)
    assert isinstance(given_back, ev.IndexOrderMintRefused) and given_back.units == mint.units
    assert isinstance(refunded, ev.CollateralRefunded) and refunded.amount == given_back.refunded
    order = d.engine.orders[mint.order_id]
    assert order.mint_status is MintStatus.REFUSED and order.spent == 0
    assert d.engine.ledger.balance("alice", "USDC").available == D(5000)
    units = {"A1": D(8), "A2": D(1)}  # SY2's basket, per unit
    assert {a: d.engine.inventory.free_quantity(a) for a in units} == {
        a: free[a] + units[a] * mint.units for a in units}
    assert violations(d.engine) == []
    [ignored] = events_of(d.apply(MintRefused, mint.order_id, 1, "again"))
    assert isinstance(ignored, ev.InputIgnored)
    # the house's units serve the next order, which is never charged twice for them
    d.order("alice", "o2", "1000", signed=terms(name="o2"))
    d.plan()
    assert violations(d.engine) == []

